namespace ControlPlane.Upstreams.Stdio;

/// <summary>
/// How stdio upstreams may run, bound from <c>ControlPlane:Upstreams:Stdio</c>. A stdio upstream is a process on the silo
/// with the silo's rights, so nothing starts unless its command is listed here, whoever registered it.
/// </summary>
public sealed class UpstreamStdioOptions
{
    public const string SectionName = UpstreamOptions.SectionName + ":Stdio";

    /// <summary>
    /// The exact commands a stdio upstream may start (compared as written, e.g. <c>node</c> or <c>/usr/bin/node</c>); empty
    /// by default, so no stdio upstream runs until a deployment lists what it trusts. Arguments are not restricted: allowing
    /// an interpreter allows any script it can reach.
    /// </summary>
    public List<string> AllowedCommands { get; set; } = [];

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
    }
}
