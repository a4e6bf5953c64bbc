using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Catalog;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;

namespace ControlPlane.Benchmarks;

/// <summary>
/// What the gateway adds to a call of a real upstream: the npm "everything" server's echo tool called directly
/// over stdio by the SDK client, then through ControlPlane (/mcp over HTTP, the guard, audit, then the same kind
/// of stdio connection). Sequential calls, so the figures are per-call latency, not throughput.
/// Needs `npm ci` in ops/upstreams (as .ci/run does).
/// </summary>
internal static class UpstreamOverhead
{
    public static async Task RunAsync(BenchHost host, Action<string> print, int calls)
    {
        var everything = FindEverythingServer();
        print("## Upstream gateway overhead (everything server's echo, stdio)");
        print("");
        if (everything is null)
        {
            print("Skipped: the npm MCP servers are not installed (run `npm ci` in ops/upstreams).");
            return;
        }

        using var operatorHttp = host.OperatorHttp();
        var registered = await operatorHttp.PostAsJsonAsync("/api/v1/servers", new { id = "everything", transport = "stdio", command = "node", args = new[] { everything, "stdio" } });
        registered.EnsureSuccessStatusCode();
        var minted = await operatorHttp.PostAsJsonAsync("/api/v1/tenants/demo/tokens", new { agentId = "bench-upstream", scopes = new[] { "server:everything:read" } });
        minted.EnsureSuccessStatusCode();
        var token = JsonDocument.Parse(await minted.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;

        var catalog = host.Services.GetRequiredService<ToolCatalog>();
        var deadline = Stopwatch.StartNew();
        while (catalog.Find(null, "everything__echo") is null)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException("The everything server did not come up.");
            await Task.Delay(100);
        }

        await using var direct = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions { Command = "node", Arguments = [everything, "stdio"] }));
        await using var gateway = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(host.BaseUrl, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token },
        }));

        var arguments = new Dictionary<string, object?> { ["message"] = "hello" };
        var directFigures = await MeasureAsync(() => direct.CallToolAsync("echo", arguments), calls);
        var gatewayFigures = await MeasureAsync(() => gateway.CallToolAsync("everything__echo", arguments), calls);

        print(Figures.Header);
        print(Figures.Rule);
        print(directFigures.Row("direct (SDK client -> stdio)"));
        print(gatewayFigures.Row("through ControlPlane (HTTP -> guard -> stdio)"));
        print("");
        print(FormattableString.Invariant($"Gateway overhead: p50 +{gatewayFigures.P50Ms - directFigures.P50Ms:0.000} ms, p99 +{gatewayFigures.P99Ms - directFigures.P99Ms:0.000} ms per call."));
        print("");
    }

    private static async Task<Figures> MeasureAsync(Func<ValueTask<ModelContextProtocol.Protocol.CallToolResult>> call, int calls)
    {
        for (var i = 0; i < Math.Min(50, calls); i++) Check(await call());
        var histogram = Figures.NewHistogram();
        for (var i = 0; i < calls; i++)
        {
            var started = Stopwatch.GetTimestamp();
            Check(await call());
            histogram.RecordValue((long)Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        return Figures.From(histogram);
    }

    private static void Check(ModelContextProtocol.Protocol.CallToolResult result)
    {
        if (result.IsError is true) throw new InvalidOperationException("The echo call failed; the figures would be meaningless.");
    }

    private static string? FindEverythingServer()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "ops", "upstreams", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js");
            if (File.Exists(path)) return path;
        }

        return null;
    }
}
