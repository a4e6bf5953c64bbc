namespace ControlPlane.Upstreams.Stdio;

/// <summary>
/// The working directory of one stdio registration on this silo: <c>&lt;WorkDirectory&gt;/&lt;key&gt;</c>, created 0700, never the
/// data directory, so a child that looks around where it starts finds its own files and none of the silo's.
/// </summary>
internal static class ChildWorkspace
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static string Prepare(string root, string key)
    {
        var directory = Path.Combine(root, key);
        if (OperatingSystem.IsWindows())
        {
            return Directory.CreateDirectory(directory).FullName;
        }

        Directory.CreateDirectory(root, OwnerOnly);
        File.SetUnixFileMode(root, OwnerOnly);
        Directory.CreateDirectory(directory, OwnerOnly);
        File.SetUnixFileMode(directory, OwnerOnly);
        return Path.GetFullPath(directory);
    }
}
