using System.Globalization;
using ModelContextProtocol.Client;

namespace ControlPlane.Benchmarks;

/// <summary>
/// One server under steady load for a profiler: the process id is printed first, then a warm-up, then the measured
/// run (attach during it). The variants are the compare section's: the bare SDK server, ControlPlane's floor (no
/// guard steps, audit discarded), every pattern on, and every pattern on with SQLite synchronous=NORMAL.
/// </summary>
internal static class Soak
{
    public static async Task RunAsync(Action<string> print, string root, string which, int concurrency, TimeSpan duration, bool sampleAllocations)
    {
        print(string.Create(CultureInfo.InvariantCulture, $"soak {which}: pid {Environment.ProcessId}, {concurrency} sessions, {duration.TotalSeconds:0} s"));
        await using var server = await StartAsync(root, which);
        print(await JitWarmUp.UntilSettledAsync(() => LoadGenerator.RunAsync(server.Connect, concurrency, TimeSpan.FromSeconds(1)), TimeSpan.FromSeconds(90)) + "; measuring");
        var process = System.Diagnostics.Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var allocatedBefore = GC.GetTotalAllocatedBytes();
        // The runtime's allocation events cost every call something: only on request.
        using var sampler = sampleAllocations ? new AllocationSampler() : null;
        sampler?.Start();
        var result = await LoadGenerator.RunAsync(server.Connect, concurrency, duration);
        sampler?.Stop();
        process.Refresh();
        var calls = result.Rate * duration.TotalSeconds;
        var cpuPerCall = (process.TotalProcessorTime - cpuBefore).TotalMicroseconds / calls;
        var allocatedPerCall = (GC.GetTotalAllocatedBytes() - allocatedBefore) / calls;
        var f = result.Figures;
        // CPU and allocation are the whole process's (client, server and, for ControlPlane, the silo) per call.
        print(string.Create(CultureInfo.InvariantCulture, $"| {which} | {concurrency} | {result.Rate:0} calls/s | p50 {f.P50Ms:0.00} | p90 {f.P90Ms:0.00} | p99 {f.P99Ms:0.00} | cpu {cpuPerCall:0} µs/call | alloc {allocatedPerCall:0} B/call | errors {result.Errors} |"));
        if (sampler is null) return;
        print("Sampled allocations by type (bytes per call):");
        foreach (var (type, bytes) in sampler.Top(40)) print(string.Create(CultureInfo.InvariantCulture, $"  {bytes / calls,8:0} {type}"));
    }

    private static async Task<Server> StartAsync(string root, string which)
    {
        switch (which)
        {
            case "bare":
                var bare = await BareServer.StartAsync(Path.Combine(root, "bare", "support-desk.db"));
                return new Server(bare.ConnectAsync, bare);
            case "floor":
                var floor = await BenchHost.StartAsync(Path.Combine(root, "floor"), new BenchHostOptions { Steps = new StepSwitches { Off = StepSwitches.StepNames }, DiscardAudit = true });
                return new Server(() => floor.ConnectAsync(), floor);
            case "discard":
                var discard = await BenchHost.StartAsync(Path.Combine(root, "discard"), new BenchHostOptions { DiscardAudit = true });
                return new Server(() => discard.ConnectAsync(), discard);
            case "normal":
                var normal = await BenchHost.StartAsync(Path.Combine(root, "normal"), new BenchHostOptions { Settings = { ["ControlPlane:Audit:SqliteSynchronous"] = "Normal" } });
                return new Server(() => normal.ConnectAsync(), normal);
            default:
                var full = await BenchHost.StartAsync(Path.Combine(root, "full"));
                return new Server(() => full.ConnectAsync(), full);
        }
    }

    private sealed class Server(Func<Task<McpClient>> connect, IAsyncDisposable owner) : IAsyncDisposable
    {
        public Func<Task<McpClient>> Connect { get; } = connect;

        public ValueTask DisposeAsync() => owner.DisposeAsync();
    }
}
