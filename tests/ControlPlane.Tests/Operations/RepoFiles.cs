namespace ControlPlane.Tests.Operations;

/// <summary>Files of the repository itself (dashboards, ops manifests), found from the test binaries upwards.</summary>
internal static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("Cannot find the repository root (ControlPlane.sln) above " + AppContext.BaseDirectory);
    }
}
