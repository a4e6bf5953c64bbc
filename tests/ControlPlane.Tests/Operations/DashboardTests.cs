using System.Text.Json;
using System.Text.RegularExpressions;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Operations;

/// <summary>Every metric a dashboard queries is one a running host exports: no panel silently shows "No data" because of a typo or a rename.</summary>
public sealed partial class DashboardTests
{
    private static readonly HashSet<string> PromQlWords = new(StringComparer.Ordinal)
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless", "inf", "nan",
    };

    [Fact]
    public async Task Every_metric_the_dashboards_query_is_exported_by_a_running_host()
    {
        var dashboards = Directory.GetFiles(RepoFiles.PathOf("dashboards"), "*.json");
        Assert.NotEmpty(dashboards);
        var queried = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in dashboards)
        {
            var expressions = Expressions(JsonDocument.Parse(await File.ReadAllTextAsync(file)).RootElement).ToList();
            Assert.True(expressions.Count >= 8, $"{Path.GetFileName(file)} has only {expressions.Count} queries.");
            foreach (var expr in expressions)
            {
                var names = MetricNames(expr).ToList();
                Assert.True(names.Count > 0, $"No metric found in '{expr}'.");
                queried.UnionWith(names);
            }
        }

        // What the dashboard is for: calls, refusals, guard latency, kill switches, approvals, audit, upstream circuits.
        Assert.Superset(new SortedSet<string>(
        [
            "controlplane_calls_total", "controlplane_refusals_total", "controlplane_guard_duration_milliseconds_bucket",
            "controlplane_kill_switches_active", "controlplane_approvals_pending", "controlplane_audit_batch_lag_milliseconds_bucket",
            "controlplane_audit_failed_batches_total", "controlplane_upstream_circuit_state",
        ]), queried);

        // A real host process, alone with its meters (in-process test hosts share meter names and can disturb each
        // other's exporters). Drive the series into existence: an allowed call (audit write, circuit), a refusal.
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-dash-" + Guid.NewGuid().ToString("N")[..10]);
        List<string> missing;
        try
        {
            await using var host = await HostProcess.StartAsync(dataDir);
            await using (var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(host.BaseUrl, "/mcp"),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + host.Credentials.AgentToken },
            })))
            {
                RefusalAssert.Succeeded(await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }));
                RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "x" }), RefusalCodes.ReadOnly);
            }

            using var http = new HttpClient { BaseAddress = host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                var exported = ExportedNames(await http.GetStringAsync("/metrics"));
                missing = [.. queried.Where(n => !exported.Contains(n))];
                if (missing.Count == 0 || DateTime.UtcNow > deadline) break;
                await Task.Delay(500);
            }
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        Assert.True(missing.Count == 0, "The dashboards query metrics /metrics does not export: " + string.Join(", ", missing));
    }

    [Fact]
    public void The_metric_name_extraction_reads_functions_labels_and_ranges_correctly()
    {
        Assert.Equal(["a_bucket"], MetricNames("histogram_quantile(0.99, sum by (le, code) (rate(a_bucket{x=\"by(y)\"}[5m])))"));
        Assert.Equal(["m1", "m2"], MetricNames("sum without (instance) (m1) / on (job) group_left max(m2 offset 5m)"));
    }

    private static IEnumerable<string> Expressions(JsonElement dashboard)
    {
        foreach (var panel in dashboard.GetProperty("panels").EnumerateArray())
        {
            if (!panel.TryGetProperty("targets", out var targets)) continue;
            foreach (var target in targets.EnumerateArray())
            {
                if (target.TryGetProperty("expr", out var expr)) yield return expr.GetString()!;
            }
        }
    }

    /// <summary>Metric names in a PromQL expression: identifiers that are not functions, keywords, label lists, matchers or ranges.</summary>
    internal static IEnumerable<string> MetricNames(string expr)
    {
        var text = StringLiteral().Replace(expr, "");
        text = Matchers().Replace(text, " ");
        text = Ranges().Replace(text, " ");
        text = Grouping().Replace(text, " ");
        text = Durations().Replace(text, " ");
        return Identifier().Matches(text)
            .Where(m => !(m.Index + m.Length < text.Length && text[(m.Index + m.Length)..].TrimStart().StartsWith('(')))
            .Select(m => m.Value)
            .Where(v => !PromQlWords.Contains(v))
            .Distinct()
            .Order(StringComparer.Ordinal);
    }

    private static HashSet<string> ExportedNames(string exposition) =>
        [.. exposition.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('{', ' ')[0])];

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Matchers();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Ranges();

    [GeneratedRegex(@"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\b\d+(\.\d+)?[smhdwy]?\b")]
    private static partial Regex Durations();

    [GeneratedRegex(@"[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();
}
