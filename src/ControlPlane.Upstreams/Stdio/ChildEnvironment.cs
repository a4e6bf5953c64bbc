namespace ControlPlane.Upstreams.Stdio;

/// <summary>
/// The whole environment of a stdio upstream's process, built explicitly instead of copied from the silo's (which holds the
/// database connection string, the audit hash key, certificate passwords): a few basics a program needs to start and
/// format text, the names a deployment adds in <see cref="UpstreamStdioOptions.PassEnvironment"/>, <c>HOME</c> and
/// <c>TMPDIR</c> pointing into the server's own working directory, then what the registration declares (which wins).
/// </summary>
internal static class ChildEnvironment
{
    /// <summary>Passed from the silo when set: where programs are, and how text is encoded and times shown. Nothing secret.</summary>
    private static readonly string[] Basics = ["PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ"];

    /// <summary>What Windows programs (and node on Windows) fail without.</summary>
    private static readonly string[] WindowsBasics = ["SYSTEMROOT", "WINDIR", "SYSTEMDRIVE", "PATHEXT", "COMSPEC", "PROCESSOR_ARCHITECTURE", "NUMBER_OF_PROCESSORS"];

    public static Dictionary<string, string?> For(UpstreamDefinition definition, UpstreamStdioOptions options, string workDirectory)
    {
        var environment = new Dictionary<string, string?>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        IEnumerable<string> passed = OperatingSystem.IsWindows() ? [.. Basics, .. WindowsBasics] : Basics;
        foreach (var name in passed.Concat(options.PassEnvironment))
        {
            if (Environment.GetEnvironmentVariable(name) is { } value) environment[name] = value;
        }

        // The silo user's home holds its dotfiles (~/.pgpass, ~/.aspnet keys, npm tokens): a child gets its own.
        var temp = Directory.CreateDirectory(Path.Combine(workDirectory, "tmp")).FullName;
        environment["HOME"] = workDirectory;
        environment["TMPDIR"] = temp;
        if (OperatingSystem.IsWindows())
        {
            environment["USERPROFILE"] = workDirectory;
            environment["TEMP"] = environment["TMP"] = temp;
        }

        foreach (var (name, value) in definition.Env) environment[name] = value;
        return environment;
    }
}
