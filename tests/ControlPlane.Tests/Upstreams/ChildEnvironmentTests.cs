using System.Text.Json;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// A stdio child gets nothing of the host's: the host process carries fake secrets in its environment (as a deployment
/// carries its connection string and keys), and the lab server, asked what it sees, reports only the basics, its own
/// declared variables, and a working directory of its own with none of the data directory's files.
/// </summary>
public sealed class ChildEnvironmentTests
{
    [UpstreamFact]
    public async Task A_stdio_child_sees_none_of_the_hosts_environment_and_works_outside_the_data_directory()
    {
        var canary = "canary-" + Guid.NewGuid().ToString("N");
        string[] secretNames = ["ControlPlane__ChildCanary", "ConnectionStrings__ChildCanary", "CP_TEST_CHILD_CANARY"];
        foreach (var name in secretNames) Environment.SetEnvironmentVariable(name, canary);
        try
        {
            await using var host = await ControlPlaneTestHost.StartAsync();
            await host.RegisterNodeAsync("lab-probe", UpstreamPackages.Lab, env: new() { ["LAB_PROBE"] = "1", ["LAB_GREETING"] = "declared-value" }, trustAnnotations: true);
            var (token, _) = await host.MintAsync("demo", "probe-agent", scopes: ["server:lab-probe:read"]);
            await using var client = await host.ConnectAsync(token);
            var result = await client.CallToolAsync("lab-probe__probe");
            RefusalAssert.Succeeded(result);
            var text = RefusalAssert.Text(result);
            var report = JsonDocument.Parse(text).RootElement;

            // None of the host's variables, not even by value; only the basics and what the registration declared.
            Assert.DoesNotContain(canary, text, StringComparison.Ordinal);
            var env = report.GetProperty("env").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
            foreach (var name in secretNames) Assert.False(env.ContainsKey(name), $"the child sees {name}");
            Assert.Equal("declared-value", env["LAB_GREETING"]);
            Assert.True(env.ContainsKey("PATH"), "the child has no PATH");
            var allowed = new HashSet<string>(StringComparer.Ordinal) { "PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR", "LAB_PROBE", "LAB_GREETING" };
            Assert.DoesNotContain(env.Keys, k => !allowed.Contains(k));
            Assert.DoesNotContain(env.Values, v => v is not null && v.Contains(host.DataDir, StringComparison.Ordinal) && !v.StartsWith(host.DataDir + "-upstreams", StringComparison.Ordinal));

            // Its own directory (also its HOME), private to the silo's user, and not the data directory or inside it.
            var cwd = report.GetProperty("cwd").GetString()!;
            var dataDir = Path.GetFullPath(host.DataDir);
            Assert.NotEqual(dataDir, cwd);
            Assert.False(cwd.StartsWith(dataDir + Path.DirectorySeparatorChar, StringComparison.Ordinal), $"the child works inside the data directory: {cwd}");
            Assert.Equal(cwd, env["HOME"]);
            Assert.Empty(report.GetProperty("found").EnumerateArray());
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(cwd));
            }
        }
        finally
        {
            foreach (var name in secretNames) Environment.SetEnvironmentVariable(name, null);
        }
    }
}
