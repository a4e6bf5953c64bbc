using System.Reflection;
using ControlPlane.Guard.Limits;
using ControlPlane.RateLimits;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Limits;

/// <summary>
/// A silo's leases under a burst far wider than its renewals: the bucket grain answers only when the test lets it, so
/// every call that stops waiting for another call's renewal reaches the grain at once, as on a loaded machine.
/// </summary>
public sealed class RateLimitLeaseUnitTests(ITestOutputHelper output)
{
    private const double Capacity = 300;
    private const double Refill = 30;
    private static readonly BucketDemand[] TenantOnly = [new(BucketLevel.Tenant, null, Capacity, Refill)];

    [Fact]
    public async Task A_burst_wider_than_the_renewals_spends_what_the_bucket_holds()
    {
        // CI once admitted 80 of a 300 bucket: hundreds of concurrent renewals each leased up to 30 tokens, the first
        // ten drained the bucket into the silo, and every other renewal came back refused with those tokens unspent.
        var grain = new HeldBucketGrain(Capacity);
        var leases = NewLeases(grain);

        var calls = Enumerable.Range(0, 400).Select(_ => leases.TakeAsync("burst", TenantOnly, 1, CancellationToken.None).AsTask()).ToArray();
        await grain.AnswerUntilAsync(calls);

        var admitted = calls.Count(c => c.Result.Allowed);
        output.WriteLine($"admitted {admitted} of {Capacity}; {leases.GrainRoundTrips} round trips; at most {grain.MostLeasesAtOnce} leases asked at once; {grain.Level} left in the bucket");
        // The clock does not move, so no lease expires: every token the bucket held is spent, by a call of this silo.
        Assert.Equal(Capacity, admitted);
        Assert.Equal(0, grain.Level);
        // One lease of a bucket out at a time; the other calls that reach the grain ask for their own cost.
        Assert.Equal(1, grain.MostLeasesAtOnce);
        Assert.All(calls.Where(c => !c.Result.Allowed), c => Assert.Equal(0, c.Result.RefusedDemand));
    }

    private static RateLimitLeases NewLeases(HeldBucketGrain grain)
    {
        var factory = DispatchProxy.Create<IGrainFactory, OneGrainFactory>();
        ((OneGrainFactory)(object)factory).Grain = grain;
        // A clock that does not move: no lease expires and the bucket does not refill, so the counts are exact.
        return new RateLimitLeases(factory, Options.Create(new RateLimitOptions()), new FakeTimeProvider());
    }

    /// <summary>A grain factory that only hands out the one bucket grain.</summary>
    public class OneGrainFactory : DispatchProxy
    {
        public object Grain { get; set; } = null!;

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
            targetMethod?.Name == nameof(IGrainFactory.GetGrain) ? Grain : throw new NotSupportedException(targetMethod?.Name);
    }

    /// <summary>One bucket that does not refill, answering the lease requests it holds when the test says so, in order.</summary>
    private sealed class HeldBucketGrain(double level) : ITenantRateLimitGrain
    {
        private readonly Lock _gate = new();
        private readonly List<(double Cost, double Wanted, TaskCompletionSource<RateLease> Answer)> _held = [];

        public double Level { get; set; } = level;

        /// <summary>The most requests for more than their own cost among those held at one time.</summary>
        public int MostLeasesAtOnce { get; private set; }

        public Task<RateDecision> TakeAsync(BucketDemand[] demands, double weight) => throw new NotSupportedException();

        public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted)
        {
            var answer = new TaskCompletionSource<RateLease>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate) _held.Add((Math.Min(weight, demands[0].Capacity), wanted[0], answer));
            return answer.Task;
        }

        /// <summary>Answers what is held, round after round, until every call has its decision.</summary>
        public async Task AnswerUntilAsync(Task[] calls)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!calls.All(c => c.IsCompleted))
            {
                Assert.True(DateTime.UtcNow < deadline, "The calls did not all get a decision within 30 s.");
                // Long enough for every call the last answers woke to reach the grain or a local decision.
                await Task.Delay(20);
                List<(double Cost, double Wanted, TaskCompletionSource<RateLease> Answer)> round;
                lock (_gate)
                {
                    round = [.. _held];
                    _held.Clear();
                }

                MostLeasesAtOnce = Math.Max(MostLeasesAtOnce, round.Count(r => r.Wanted > r.Cost));
                foreach (var (cost, wanted, answer) in round)
                {
                    if (Level < cost)
                    {
                        answer.SetResult(new RateLease(false, 0, (cost - Level) / Refill, null));
                        continue;
                    }

                    var take = Math.Max(cost, Math.Min(wanted, cost + Math.Floor(Level - cost)));
                    Level -= take;
                    answer.SetResult(new RateLease(true, -1, 0, [take]));
                }
            }
        }
    }
}
