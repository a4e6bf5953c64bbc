using System.Diagnostics;
using System.Runtime;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Steady state means the JIT has stopped. Tiered compilation promotes hot methods to optimised code on a background
/// thread for tens of seconds after a server starts taking calls: the embedded host JIT-compiles about 32,000 methods
/// (about 14 s of compiler time on 2 cores; the bare SDK server about 13,000), and a run measured meanwhile shares
/// the cores with the compiler. A fixed warm-up of a few seconds measured ControlPlane at half its steady rate.
/// </summary>
internal static class JitWarmUp
{
    /// <summary>Fewer new compilations than this in a round counts as quiet; two quiet rounds in a row, settled.</summary>
    private const int QuietMethods = 50;

    /// <summary>Repeats <paramref name="call"/> in rounds of one second until the JIT settles, or for at most <paramref name="cap"/>.</summary>
    public static Task<string> RepeatingUntilSettledAsync(Func<Task> call, TimeSpan cap) => UntilSettledAsync(async () =>
    {
        for (var round = Stopwatch.StartNew(); round.Elapsed < TimeSpan.FromSeconds(1);) await call();
    }, cap);

    /// <summary>Runs <paramref name="round"/> (about a second of load) until the JIT settles, or for at most <paramref name="cap"/>.</summary>
    public static async Task<string> UntilSettledAsync(Func<Task> round, TimeSpan cap)
    {
        var started = Stopwatch.StartNew();
        var first = JitInfo.GetCompiledMethodCount();
        var quiet = 0;
        while (quiet < 2 && started.Elapsed < cap)
        {
            var before = JitInfo.GetCompiledMethodCount();
            await round();
            quiet = JitInfo.GetCompiledMethodCount() - before < QuietMethods ? quiet + 1 : 0;
        }

        var settled = quiet >= 2 ? "settled" : "still compiling at the cap";
        return FormattableString.Invariant(
            $"JIT {settled} after {started.Elapsed.TotalSeconds:0} s of load ({JitInfo.GetCompiledMethodCount() - first:N0} methods compiled meanwhile, {JitInfo.GetCompiledMethodCount():N0} in all)");
    }
}
