using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Where an idle session's bytes go: a gcdump of this process before and after opening many sessions over real HTTP,
/// and the types whose retained size grew most, per session. Needs the dotnet-gcdump tool
/// (<c>dotnet tool install -g dotnet-gcdump</c>); a profiling aid, not part of the suite.
/// </summary>
internal static partial class SessionHeap
{
    public static bool IsAvailable => File.Exists(ToolPath("dotnet-gcdump"));

    public static async Task RunAsync(Action<string> print, string root, int sessions)
    {
        Directory.CreateDirectory(root);
        await using var host = await BenchHost.StartAsync(Path.Combine(root, "heap"));
        using var opener = new SessionOpener(new Uri(host.BaseUrl, "/mcp"), host.Credentials.AgentToken);
        await opener.OpenAsync(20);
        var before = Dump(root, "before");
        await opener.OpenAsync(sessions);
        var after = Dump(root, "after");

        var grown = after
            .Select(t => (Type: t.Key, Bytes: (t.Value.Bytes - before.GetValueOrDefault(t.Key).Bytes) / (double)sessions, Objects: (t.Value.Count - before.GetValueOrDefault(t.Key).Count) / (double)sessions))
            .Where(t => t.Bytes > 0)
            .OrderByDescending(t => t.Bytes)
            .ToList();

        print($"### Where a live idle session's bytes go, before it is parked ({sessions:N0} sessions opened over real HTTP; gcdump of the server process before and after)");
        print("");
        print("| owner | bytes per session |");
        print("|---|---|");
        foreach (var owner in grown.GroupBy(t => Owner(t.Type)).OrderByDescending(g => g.Sum(t => t.Bytes)))
        {
            print(string.Create(CultureInfo.InvariantCulture, $"| {owner.Key} | {owner.Sum(t => t.Bytes):0} |"));
        }

        print(string.Create(CultureInfo.InvariantCulture, $"| **total** | **{grown.Sum(t => t.Bytes):0}** |"));
        print("");
        print("| largest types | owner | bytes per session | objects per session |");
        print("|---|---|---|---|");
        foreach (var (type, bytes, objects) in grown.Take(12))
        {
            print(string.Create(CultureInfo.InvariantCulture, $"| `{Shorten(type)}` | {Owner(type)} | {bytes:0} | {objects:0.0} |"));
        }

        print("");
    }

    // Type names say whose code made the object; BCL types (delegates, channels, strings) go to whoever is likelier to
    // allocate them per session only when their generic arguments name that owner.
    private static string Owner(string type) =>
        type.Contains("ControlPlane", StringComparison.Ordinal) ? "ControlPlane" :
        type.Contains("ModelContextProtocol", StringComparison.Ordinal) ? "MCP SDK" :
        type.Contains("Orleans", StringComparison.Ordinal) ? "Orleans (grain directory cache)" :
        "BCL objects (strings, delegates, cancellation, channels)";

    private static string Shorten(string type)
    {
        var withoutAssembly = type[..(type.LastIndexOf("  [", StringComparison.Ordinal) is var i and > 0 ? i : type.Length)];
        return withoutAssembly.Length > 110 ? withoutAssembly[..107] + "..." : withoutAssembly;
    }

    private static Dictionary<string, (long Bytes, long Count)> Dump(string root, string name)
    {
        var file = Path.Combine(root, name + ".gcdump");
        Run("dotnet-gcdump", $"collect -p {Environment.ProcessId} -o {file}");
        var report = Run("dotnet-gcdump", $"report {file}");
        var types = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        foreach (var line in report.Split('\n'))
        {
            var match = ReportLine().Match(line);
            if (!match.Success) continue;
            // The report prints each type's object size and count (large objects grouped by a size bucket in the name).
            var size = long.Parse(match.Groups[1].Value.Replace(",", ""), CultureInfo.InvariantCulture);
            var count = long.Parse(match.Groups[2].Value.Replace(",", ""), CultureInfo.InvariantCulture);
            var type = SizeBucket().Replace(match.Groups[3].Value.Trim(), "");
            if (type.StartsWith("GC Heap", StringComparison.Ordinal)) continue;
            var bytes = size * count;
            types[type] = types.TryGetValue(type, out var seen) ? (seen.Item1 + bytes, seen.Item2 + count) : (bytes, count);
        }

        return types;
    }

    private static string Run(string tool, string arguments)
    {
        var path = ToolPath(tool);
        using var process = Process.Start(new ProcessStartInfo(File.Exists(path) ? path : tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {arguments} failed: {process.StandardError.ReadToEnd()}");
        return output;
    }

    private static string ToolPath(string tool) => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", tool);

    // "    1,234,567     12,345  System.String" (size, count, type), as dotnet-gcdump report prints them.
    [GeneratedRegex(@"^\s*([\d,]+)\s+([\d,]+)\s+(.+?)\s*$")]
    private static partial Regex ReportLine();

    [GeneratedRegex(@"\s*\(Bytes > [^)]*\)")]
    private static partial Regex SizeBucket();
}
