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

    [Fact]
    public async Task Tokens_a_lease_left_unspent_go_back_to_the_bucket_once_it_expired()
    {
        // Session 8's CI refused a user 19 times before it had spent its budget: leases that expired unspent during a
        // slow burst had taken their tokens from the bucket for good.
        var (grain, leases) = await SevenUnspentThenExpiredAsync("unspent");
        Assert.True(await DecideAsync(leases, grain, "unspent"));

        Assert.Equal([7d], grain.ReturnedEach);
        // Nine calls spent nine tokens; the rest of the last grant is this silo's new lease.
        Assert.Equal(Capacity - 9 - (grain.LastGrant - 1), grain.Level);
    }

    [Fact]
    public async Task A_lease_retried_after_a_rejected_message_does_not_return_its_tokens_twice()
    {
        var (grain, leases) = await SevenUnspentThenExpiredAsync("rejected");

        // The grain takes the returned tokens, then its silo rejects the reply (it is leaving the cluster): the
        // guard's one retry must not send them again.
        grain.RejectNext = true;
        Assert.True(await DecideAsync(leases, grain, "rejected"));

        Assert.Equal([7d], grain.ReturnedEach);
        // The rejected request carried the 7 tokens; its retry carried none.
        Assert.Equal([7d], grain.ReturnedByRequest[^2]!);
        Assert.Null(grain.ReturnedByRequest[^1]);
    }

    /// <summary>Sequential calls grow the lease (1, 2, 4, 8 tokens): after 8 calls the silo holds 7 unspent; then it expires.</summary>
    private static async Task<(HeldBucketGrain Grain, RateLimitLeases Leases)> SevenUnspentThenExpiredAsync(string tenant)
    {
        var clock = new FakeTimeProvider();
        var grain = new HeldBucketGrain(Capacity);
        var leases = NewLeases(grain, clock);
        for (var i = 0; i < 8; i++) Assert.True(await DecideAsync(leases, grain, tenant));
        Assert.Equal(Capacity - 15, grain.Level);
        clock.Advance(TimeSpan.FromSeconds(1.5));
        return (grain, leases);
    }

    private static async Task<bool> DecideAsync(RateLimitLeases leases, HeldBucketGrain grain, string tenant)
    {
        var call = leases.TakeAsync(tenant, TenantOnly, 1, CancellationToken.None).AsTask();
        await grain.AnswerUntilAsync([call]);
        return call.Result.Allowed;
    }

    // A clock that does not move unless the test moves it: no lease expires and the bucket does not refill on its own.
    private static RateLimitLeases NewLeases(HeldBucketGrain grain, FakeTimeProvider? clock = null)
    {
        var factory = DispatchProxy.Create<IGrainFactory, OneGrainFactory>();
        ((OneGrainFactory)(object)factory).Grain = grain;
        return new RateLimitLeases(factory, Options.Create(new RateLimitOptions()), clock ?? new FakeTimeProvider());
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

        public double Level { get; private set; } = level;

        /// <summary>What each lease request returned, in order (null: nothing).</summary>
        public List<double[]?> ReturnedByRequest { get; } = [];

        /// <summary>Every positive amount a silo returned, in order.</summary>
        public List<double> ReturnedEach { get; } = [];

        /// <summary>Tokens granted to the last lease answered.</summary>
        public double LastGrant { get; private set; }

        /// <summary>When set, the next lease request returns its tokens and then fails as a rejected message.</summary>
        public bool RejectNext { get; set; }

        /// <summary>The most requests for more than their own cost among those held at one time.</summary>
        public int MostLeasesAtOnce { get; private set; }

        public Task<RateDecision> TakeAsync(BucketDemand[] demands, double weight) => throw new NotSupportedException();

        public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted) => throw new NotSupportedException();

        public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted, double[]? returned)
        {
            var answer = new TaskCompletionSource<RateLease>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                ReturnedByRequest.Add(returned);
                if (returned is [> 0 and var back])
                {
                    ReturnedEach.Add(back);
                    Level = Math.Min(Capacity, Level + back);
                }

                if (RejectNext)
                {
                    RejectNext = false;
                    return Task.FromException<RateLease>((Exception)Activator.CreateInstance(
                        typeof(OrleansMessageRejectionException), BindingFlags.Instance | BindingFlags.NonPublic, null, ["the silo is leaving"], null)!);
                }

                _held.Add((Math.Min(weight, demands[0].Capacity), wanted[0], answer));
            }

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
                    LastGrant = take;
                    answer.SetResult(new RateLease(true, -1, 0, [take]));
                }
            }
        }
    }
}
