using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Benchmarks;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using Microsoft.Extensions.DependencyInjection;

// Printed figures, not assertions. Quick mode keeps the whole run to well under a minute on 2 cores.
var mode = args.FirstOrDefault() ?? "all";
var quick = args.Contains("--quick");
var report = new StringBuilder();
void Print(string line)
{
    Console.WriteLine(line);
    report.AppendLine(line);
}

Print($"# ControlPlane benchmarks ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}, {(quick ? "quick" : "full")} mode)");
Print("");

var root = Path.Combine(Path.GetTempPath(), "cp-bench-" + Guid.NewGuid().ToString("N")[..8]);
try
{
    if (mode is "micro")
    {
        await new Suite(quick, root, Print).RunMicroAsync();
    }
    else if (mode is "suite")
    {
        await new Suite(quick, root, Print).RunAsync();
    }
    else if (mode is "section")
    {
        // One section of the suite on its own, e.g. `section confirmed --quick`, for before/after comparisons.
        await new Suite(quick, root, Print).RunSectionAsync(args.Skip(1).FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) ?? "");
    }
    else if (mode is "sessions")
    {
        await new Suite(quick, root, Print).RunSessionsAsync();
    }
    else if (mode is "session-heap")
    {
        await SessionHeap.RunAsync(Print, root, quick ? 2_000 : 10_000);
    }
    else if (mode is "soak")
    {
        // One server under a steady closed-loop load, for a profiler to attach to (dotnet-trace collect -p <pid>):
        // `soak bare|floor|discard|full|normal <sessions> <seconds> [--alloc]`.
        var positional = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var which = positional.ElementAtOrDefault(0) ?? "full";
        var concurrency = int.Parse(positional.ElementAtOrDefault(1) ?? "16", CultureInfo.InvariantCulture);
        var seconds = double.Parse(positional.ElementAtOrDefault(2) ?? "30", CultureInfo.InvariantCulture);
        await Soak.RunAsync(Print, root, which, concurrency, TimeSpan.FromSeconds(seconds), args.Contains("--alloc"));
    }
    else if (mode is "audit")
    {
        // Not part of "all": it needs a PostgreSQL server (bash ops/postgres-dev.sh) and no host.
        await AuditThroughput.RunAsync(Print, root, quick ? 20_000 : 100_000, 500);
    }
    else
    {
        await using var first = await BenchHost.StartAsync(Path.Combine(root, "data"));
        if (mode is "all" or "propagation") await PropagationAsync(first, quick ? 100 : 500);
        if (mode is "all" or "guard") await GuardStepsAsync(first, quick ? 200_000 : 1_000_000);
        if (mode is "all" or "throughput") await ThroughputAsync(first, quick ? TimeSpan.FromSeconds(4) : TimeSpan.FromSeconds(15));
        if (mode is "all" or "compare") await CompareAsync(first, quick ? TimeSpan.FromSeconds(4) : TimeSpan.FromSeconds(15));
        // Not part of "all": it needs the npm MCP servers (npm ci in ops/upstreams).
        if (mode is "upstream") await UpstreamOverhead.RunAsync(first, Print, quick ? 300 : 2000);
    }
}
finally
{
    try { Directory.Delete(root, recursive: true); } catch (IOException) { }
}

var output = mode is "suite" && Suite.RepositoryResultsPath() is { } inRepository ? inRepository : Path.Combine(AppContext.BaseDirectory, "benchmark-results.md");
if (mode is "suite")
{
    report.Insert(0, $"""
        <!-- Written by the benchmark suite; re-run it rather than editing by hand. -->
        Reproduce (about {(quick ? "4 minutes" : "15 minutes")} on 2 cores; PostgreSQL for the audit and action rows: `bash ops/postgres-dev.sh` or CONTROLPLANE_TEST_POSTGRES):

        ```bash
        dotnet run -c Release --project tests/ControlPlane.Benchmarks -- suite{(quick ? " --quick" : "")}
        ```


        """);
}

File.WriteAllText(output, report.ToString());
Console.WriteLine($"(written to {output})");
return;

// Kill propagation: a second silo joins the first; each round flips a switch through silo 1's REST API
// while a watcher spins on silo 2's in-memory kill index. "visible on silo 2" is the time from sending the
// operator's request to silo 2 refusing the covered call; "operator round trip" includes the push to every silo.
async Task PropagationAsync(BenchHost first, int rounds)
{
    await using var second = await BenchHost.StartAsync(first.DataDir, first.SiloPort);
    var cache = second.Services.GetRequiredService<GuardStateCache>();
    using var http = first.OperatorHttp();
    var call = new CallIdentity("demo", "demo-agent", "demo-user", null, "support-desk", "lookup_customer_by_email");

    var visible = Figures.NewHistogram();
    var roundTrip = Figures.NewHistogram();
    var cleared = Figures.NewHistogram();
    for (var i = 0; i < rounds; i++)
    {
        var started = Stopwatch.GetTimestamp();
        var watcher = Task.Run(() => SpinUntil(() => cache.Kills.Match(call) is not null, started));
        var response = await http.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "propagation drill" });
        roundTrip.RecordValue(Micros(started));
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        visible.RecordValue(await watcher);

        started = Stopwatch.GetTimestamp();
        watcher = Task.Run(() => SpinUntil(() => cache.Kills.Match(call) is null, started));
        await http.PostAsJsonAsync($"/api/v1/kill-switches/{id}/clear", new { reason = "drill over" });
        cleared.RecordValue(await watcher);
    }

    Print($"## Kill-switch propagation across 2 silos ({rounds} flips)");
    Print("");
    Print(Figures.Header);
    Print(Figures.Rule);
    Print(Figures.From(visible).Row("flip via silo 1 → refused on silo 2"));
    Print(Figures.From(cleared).Row("clear via silo 1 → allowed on silo 2"));
    Print(Figures.From(roundTrip).Row("operator request round trip (durable + pushed to all silos)"));
    Print("");
}

// Guarded read calls over real MCP (Streamable HTTP, stateful sessions) on 127.0.0.1 at fixed concurrency.
async Task ThroughputAsync(BenchHost host, TimeSpan duration)
{
    Print($"## Guarded call throughput: lookup_customer_by_email over MCP on 127.0.0.1 ({duration.TotalSeconds:0} s per level)");
    Print("");
    Print(Figures.Header + " calls/s |");
    Print(Figures.Rule + "---|");
    foreach (var concurrency in new[] { 1, 8, 32 })
    {
        var (figures, rate, errors) = await LoadAsync(() => host.ConnectAsync(), concurrency, duration);
        Print(figures.Row($"{concurrency} sessions", string.Create(CultureInfo.InvariantCulture, $" {rate:0} |")));
        if (errors > 0) Print($"(!) {errors} calls returned errors");
    }

    Print("");
}

// The same workload against the bare SDK server and ControlPlane, interleaved per level, with the ratios.
async Task CompareAsync(BenchHost host, TimeSpan duration)
{
    await using var bare = await BareServer.StartAsync(Path.Combine(root, "bare", "support-desk.db"));
    Print($"## ControlPlane (every pattern on) against the bare MCP SDK server, same tools ({duration.TotalSeconds:0} s per run)");
    Print("");
    Print("| sessions | bare calls/s | guarded calls/s | throughput ratio (bare/guarded) | bare p50 / p99 ms | guarded p50 / p99 ms | p99 ratio (guarded/bare) |");
    Print("|---|---|---|---|---|---|---|");
    foreach (var concurrency in new[] { 1, 8, 32 })
    {
        var (bareFigures, bareRate, _) = await LoadAsync(bare.ConnectAsync, concurrency, duration);
        var (guardedFigures, guardedRate, errors) = await LoadAsync(() => host.ConnectAsync(), concurrency, duration);
        Print(string.Create(CultureInfo.InvariantCulture,
            $"| {concurrency} | {bareRate:0} | {guardedRate:0} | {bareRate / guardedRate:0.00} | {bareFigures.P50Ms:0.00} / {bareFigures.P99Ms:0.00} | {guardedFigures.P50Ms:0.00} / {guardedFigures.P99Ms:0.00} | {guardedFigures.P99Ms / bareFigures.P99Ms:0.00} |"));
        if (errors > 0) Print($"(!) {errors} guarded calls returned errors");
    }

    Print("");
}

async Task<(Figures Figures, double Rate, int Errors)> LoadAsync(Func<Task<ModelContextProtocol.Client.McpClient>> connect, int concurrency, TimeSpan duration)
{
    var arguments = new Dictionary<string, object?> { ["email"] = "ada@example.com" };
    var clients = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => connect()));
    foreach (var client in clients) await client.CallToolAsync("lookup_customer_by_email", arguments);

    var histogram = Figures.NewHistogram();
    var errors = 0;
    var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var started = Stopwatch.GetTimestamp();
    await Task.WhenAll(clients.Select(async client =>
    {
        var local = Figures.NewHistogram();
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var t = Stopwatch.GetTimestamp();
            var result = await client.CallToolAsync("lookup_customer_by_email", arguments);
            local.RecordValue(Micros(t));
            if (result.IsError is true) Interlocked.Increment(ref errors);
        }

        lock (histogram) histogram.Add(local);
    }));
    var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
    foreach (var client in clients) await client.DisposeAsync();
    var figures = Figures.From(histogram);
    return (figures, figures.Count / seconds, errors);
}

// The guard in-process, without HTTP or MCP: each step alone and the whole pipeline, on the real
// services of a running host, for a read call with valid arguments by the demo token.
async Task GuardStepsAsync(BenchHost host, int iterations)
{
    var services = host.Services;
    var (_, granted) = await services.GetRequiredService<AgentTokenValidator>().ValidateAsync(host.Credentials.AgentToken, CancellationToken.None);
    var tool = services.GetRequiredService<ToolCatalog>().Find(null, "lookup_customer_by_email")!;
    var arguments = new Dictionary<string, JsonElement> { ["email"] = JsonSerializer.SerializeToElement("ada@example.com") };
    var call = services.GetRequiredService<GuardCallBuilder>().ForTool(new CallIdentity("demo", "demo-agent", "demo-user", "bench-session", tool.ServerId, tool.ToolName), granted!.Token, granted.Grant, tool, arguments);

    Print($"## Guard steps in-process ({iterations:N0} calls each, read tool, valid arguments)");
    Print("");
    Print("| step | ns/call | bytes allocated/call |");
    Print("|---|---|---|");
    var pipeline = services.GetRequiredService<GuardPipeline>();
    var steps = GuardPipeline.StepsInOrder(services);
    foreach (var step in steps) Print(Measure(step.Name, () => step.CheckAsync(call, CancellationToken.None)));
    Print(Measure("whole pipeline", () => pipeline.EvaluateAsync(call, CancellationToken.None)));

    var validator = services.GetRequiredService<AgentTokenValidator>();
    Print(Measure("token check (HTTP authentication, cached record)", async () => { await validator.ValidateAsync(host.Credentials.AgentToken, CancellationToken.None); return null; }));
    Print("");

    string Measure(string name, Func<ValueTask<Refusal?>> run)
    {
        // Warm up past tiered compilation, so the figure is the steady state.
        for (var i = 0; i < iterations / 2; i++) run().AsTask().GetAwaiter().GetResult();
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < iterations; i++)
        {
            var pending = run();
            if (!pending.IsCompletedSuccessfully) pending.AsTask().GetAwaiter().GetResult();
        }

        var ns = Stopwatch.GetElapsedTime(started).TotalNanoseconds / iterations;
        var allocated = (GC.GetAllocatedBytesForCurrentThread() - bytes) / (double)iterations;
        return string.Create(CultureInfo.InvariantCulture, $"| {name} | {ns:0} | {allocated:0} |");
    }
}

static long SpinUntil(Func<bool> condition, long started)
{
    var spinner = new SpinWait();
    while (!condition())
    {
        if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(10)) throw new TimeoutException("Not propagated within 10 s.");
        spinner.SpinOnce(sleep1Threshold: -1);
    }

    return Micros(started);
}

static long Micros(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
