using System.Reflection;
using ControlPlane.Guard.Limits;
using ControlPlane.RateLimits;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Tests.Limits;

/// <summary>
/// A silo deciding a tenant's calls while the tenant's bucket grain cannot be reached (its silo crashed and is not
/// yet declared dead): calls go on at this silo's share of the refill rate, never above it, and only for so long.
/// </summary>
public sealed class RateLimitBridgeTests
{
    private static readonly BucketDemand Refilling = new(BucketLevel.Agent, "agent-1", Capacity: 300, RefillPerSecond: 50);

    [Fact]
    public void An_unreachable_grain_lets_calls_go_at_the_silos_share_of_one_lifetime_then_at_the_refill_rate()
    {
        var clock = new FakeTimeProvider();
        var bridge = NewBridge(clock);

        // One silo, one-second leases: the bridge starts with one lifetime's refill (50) and refills at 50/s.
        var admitted = Enumerable.Range(0, 80).Count(_ => bridge.Take("t", [Refilling], 1)!.Allowed);
        Assert.Equal(50, admitted);

        var refused = bridge.Take("t", [Refilling], 1)!;
        Assert.False(refused.Allowed);
        Assert.Equal(0, refused.RefusedDemand);
        Assert.InRange(refused.RetryAfterSeconds, 0.019, 0.021);

        clock.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal(5, Enumerable.Range(0, 20).Count(_ => bridge.Take("t", [Refilling], 1)!.Allowed));
    }

    [Fact]
    public void A_call_is_taken_from_every_bucket_or_from_none()
    {
        var bridge = NewBridge(new FakeTimeProvider());
        var tight = new BucketDemand(BucketLevel.Tool, "srv/tool", Capacity: 10, RefillPerSecond: 2);

        Assert.Equal(2, Enumerable.Range(0, 5).Count(_ => bridge.Take("t", [Refilling, tight], 1)!.Allowed));
        var refused = bridge.Take("t", [Refilling, tight], 1)!;
        Assert.Equal(1, refused.RefusedDemand);

        // The refused calls took nothing from the agent's bucket: 48 of its 50 are left.
        Assert.Equal(48, Enumerable.Range(0, 60).Count(_ => bridge.Take("t", [Refilling], 1)!.Allowed));
    }

    [Fact]
    public void An_exact_budget_or_a_bridge_past_its_time_leaves_the_call_undecided()
    {
        var clock = new FakeTimeProvider();
        var bridge = NewBridge(clock);

        Assert.Null(bridge.Take("t", [new BucketDemand(BucketLevel.Tenant, null, 100, 0)], 1));

        Assert.True(bridge.Take("t", [Refilling], 1)!.Allowed);
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Null(bridge.Take("t", [Refilling], 1));

        Assert.Null(NewBridge(clock, TimeSpan.Zero).Take("other", [Refilling], 1));
    }

    [Fact]
    public void While_bridging_one_call_in_each_probe_interval_tries_the_grain()
    {
        var clock = new FakeTimeProvider();
        var bridge = NewBridge(clock);
        Assert.False(bridge.ShouldBypass("t"));

        bridge.Take("t", [Refilling], 1);
        Assert.True(bridge.ShouldBypass("t"));
        clock.Advance(RateLimitBridge.ProbeInterval);
        Assert.False(bridge.ShouldBypass("t"));
        Assert.True(bridge.ShouldBypass("t"));

        bridge.Close("t");
        Assert.False(bridge.ShouldBypass("t"));
    }

    [Fact]
    public async Task Leases_bridge_a_grain_whose_silo_is_unavailable_and_not_a_grain_that_failed()
    {
        var clock = new FakeTimeProvider();
        var unreachable = new FailingBucketGrain(NewRejection());
        var leases = NewLeases(unreachable, clock);
        var decision = await leases.TakeAsync("t", [Refilling], 1, CancellationToken.None);
        Assert.True(decision.Allowed);
        var tries = unreachable.Calls;
        Assert.InRange(tries, 1, 2); // the guard's one retry for a silo that is leaving

        // Within the probe interval the next call does not wait on the grain again; after it, one call tries.
        Assert.True((await leases.TakeAsync("t", [Refilling], 1, CancellationToken.None)).Allowed);
        Assert.Equal(tries, unreachable.Calls);
        clock.Advance(RateLimitBridge.ProbeInterval);
        Assert.True((await leases.TakeAsync("t", [Refilling], 1, CancellationToken.None)).Allowed);
        Assert.True(unreachable.Calls > tries);

        var broken = NewLeases(new FailingBucketGrain(new InvalidOperationException("a bug in the grain")), clock);
        await Assert.ThrowsAsync<InvalidOperationException>(() => broken.TakeAsync("t", [Refilling], 1, CancellationToken.None).AsTask());
    }

    private static RateLimitBridge NewBridge(TimeProvider clock, TimeSpan? window = null) =>
        new(Options.Create(new RateLimitOptions { UnreachableBridge = window ?? TimeSpan.FromSeconds(30) }), clock);

    private static RateLimitLeases NewLeases(ITenantRateLimitGrain grain, TimeProvider clock)
    {
        var factory = DispatchProxy.Create<IGrainFactory, RateLimitLeaseUnitTests.OneGrainFactory>();
        ((RateLimitLeaseUnitTests.OneGrainFactory)(object)factory).Grain = grain;
        var options = Options.Create(new RateLimitOptions());
        return new RateLimitLeases(factory, options, clock, new RateLimitBridge(options, clock));
    }

    private static Exception NewRejection() => (Exception)Activator.CreateInstance(
        typeof(SiloUnavailableException), BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, null, ["the silo is gone"], null)!;

    /// <summary>A bucket grain every call to which fails with one exception.</summary>
    private sealed class FailingBucketGrain(Exception failure) : ITenantRateLimitGrain
    {
        public int Calls { get; private set; }

        public Task<RateDecision> TakeAsync(BucketDemand[] demands, double weight) => throw new NotSupportedException();

        public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted) => throw new NotSupportedException();

        public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted, double[]? returned)
        {
            Calls++;
            return Task.FromException<RateLease>(failure);
        }
    }
}
