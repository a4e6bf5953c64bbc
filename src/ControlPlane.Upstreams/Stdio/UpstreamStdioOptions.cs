namespace ControlPlane.Upstreams.Stdio;

/// <summary>
/// How stdio upstreams may run, bound from <c>ControlPlane:Upstreams:Stdio</c>. A stdio upstream is a process on the silo
/// with the silo's rights, so nothing starts unless its command is listed here, whoever registered it.
/// </summary>
public sealed class UpstreamStdioOptions
{
    public const string SectionName = UpstreamOptions.SectionName + ":Stdio";

    private static readonly string[] SiloSettingPrefixes = ["ControlPlane__", "ConnectionStrings__", "ASPNETCORE_", "DOTNET_", "Kestrel__"];

    /// <summary>
    /// The exact commands a stdio upstream may start (compared as written, e.g. <c>node</c> or <c>/usr/bin/node</c>); empty
    /// by default, so no stdio upstream runs until a deployment lists what it trusts. Arguments are not restricted: allowing
    /// an interpreter allows any script it can reach.
    /// </summary>
    public List<string> AllowedCommands { get; set; } = [];

    /// <summary>
    /// Where each stdio upstream gets its own working directory (<c>&lt;WorkDirectory&gt;/&lt;server key&gt;</c>, 0700), also its
    /// <c>HOME</c> and <c>TMPDIR</c>. Must not be or lie inside the data directory. The host sets a default beside the data
    /// directory (<c>&lt;DataDir&gt;-upstreams/silo-&lt;SiloPort&gt;</c>).
    /// </summary>
    public string? WorkDirectory { get; set; }

    /// <summary>Where children work when the host set no <see cref="WorkDirectory"/>: per process under the temp directory.</summary>
    internal static string FallbackWorkDirectory => Path.Combine(Path.GetTempPath(), $"controlplane-upstreams-{Environment.ProcessId}");

    /// <summary>Why <see cref="WorkDirectory"/> may not be used beside <paramref name="dataDirectory"/>; null when it may.</summary>
    public string? RefuseWorkDirectory(string? dataDirectory)
    {
        if (WorkDirectory is null || dataDirectory is null) return null;
        var work = Path.TrimEndingDirectorySeparator(Path.GetFullPath(WorkDirectory)) + Path.DirectorySeparatorChar;
        var data = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDirectory)) + Path.DirectorySeparatorChar;
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return work.StartsWith(data, comparison) || data.StartsWith(work, comparison)
            ? $"{SectionName}:WorkDirectory ('{WorkDirectory}') must not be, hold or lie inside the data directory ('{dataDirectory}'): stdio upstreams work there"
            : null;
    }

    /// <summary>
    /// Names of the silo's environment variables passed to every stdio upstream beside the basics (PATH, LANG, LC_*, TZ), e.g.
    /// <c>NODE_EXTRA_CA_CERTS</c> or <c>HTTPS_PROXY</c>. Never the silo's own settings (<c>ControlPlane__*</c>, <c>ConnectionStrings__*</c>).
    /// Everything else a server needs is declared in its registration's <c>env</c>.
    /// </summary>
    public List<string> PassEnvironment { get; set; } = [];

    public bool IsAllowed(string? command) => command is not null && AllowedCommands.Contains(command, StringComparer.Ordinal);

    /// <summary>Why a command may not start, naming the key; null when it may.</summary>
    public string? Refuse(string? command) => IsAllowed(command)
        ? null
        : $"the command '{command}' is not in {SectionName}:AllowedCommands ({(AllowedCommands.Count == 0 ? "empty: no stdio upstream may run" : string.Join(", ", AllowedCommands))}); a deployment lists the exact commands it trusts there";

    public IEnumerable<string> Validate()
    {
        for (var i = 0; i < AllowedCommands.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(AllowedCommands[i])) yield return $"{SectionName}:AllowedCommands:{i} is empty.";
        }

        for (var i = 0; i < PassEnvironment.Count; i++)
        {
            var name = PassEnvironment[i];
            if (string.IsNullOrWhiteSpace(name) || name.Contains('=', StringComparison.Ordinal))
            {
                yield return $"{SectionName}:PassEnvironment:{i}: '{name}' is not an environment variable name.";
            }
            else if (SiloSettingPrefixes.Any(p => name.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
            {
                yield return $"{SectionName}:PassEnvironment:{i}: '{name}' is one of the silo's own settings; declare what the server needs in its registration's env instead.";
            }
        }
    }
}
