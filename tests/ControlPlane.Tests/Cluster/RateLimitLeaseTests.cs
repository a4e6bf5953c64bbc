using System.Diagnostics;
using ControlPlane.Guard.Limits;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.RateLimits;
using ControlPlane.Refusals;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Cluster;

/// <summary>
/// Silo-local leases on the tenant's bucket grain: most calls skip the round trip, no bucket is overspent across
/// silos, and an operator who tightens a limit is obeyed on the next call, whatever a silo had leased.
/// </summary>
public sealed class RateLimitLeaseTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_busy_agent_is_decided_on_its_silo_for_most_calls()
    {
        await OnClusterAsync(1, async cluster =>
        {
            await SetAsync(cluster, new RateLimitSetting("lease-busy", "agent", "busy", 1000, 200, "test", DateTimeOffset.UtcNow));
            var silo = cluster.SiloServices[0];
            var leases = silo.GetRequiredService<RateLimitLeases>();
            var before = leases.GrainRoundTrips;

            for (var i = 0; i < 1000; i++)
            {
                Assert.Null(await GuardCluster.EvaluateAsync(silo, new CallIdentity("lease-busy", "busy", null, "s", GuardCluster.ServerId, "read_tool")));
            }

            var roundTrips = leases.GrainRoundTrips - before;
            output.WriteLine($"1000 calls, {roundTrips} bucket-grain round trips");
            Assert.InRange(roundTrips, 1, 100);
        });
    }

    [Fact]
    public async Task A_burst_across_two_silos_never_overspends_a_refilling_bucket()
    {
        await OnClusterAsync(2, async cluster =>
        {
            const int Capacity = 300;
            const double Refill = 30;
            await SetAsync(cluster, new RateLimitSetting("lease-burst", "tenant", null, Capacity, Refill, "test", DateTimeOffset.UtcNow));

            var silos = cluster.SiloServices;
            var clock = Stopwatch.StartNew();
            var refusals = await Task.WhenAll(Enumerable.Range(0, 2000).Select(i => Task.Run(() => GuardCluster.EvaluateAsync(
                silos[i % silos.Count],
                new CallIdentity("lease-burst", "agent-" + (i % 10), null, "session-" + i, GuardCluster.ServerId, "read_tool")))));
            var elapsed = clock.Elapsed.TotalSeconds;

            var admitted = refusals.Count(r => r is null);
            var ceiling = Capacity + (Refill * elapsed);
            output.WriteLine($"capacity {Capacity} + {Refill}/s over {elapsed:0.00} s = {ceiling:0}; admitted {admitted}");
            Assert.True(admitted <= ceiling + 1, $"admitted {admitted}, more than the bucket held ({ceiling:0})");
            // Tokens leased but not yet spent can refuse early, by at most a lease (a tenth of the bucket) per silo.
            // The refusals by code and level, so that a shortfall says which bucket refused (CI saw 80 once, in 0.95 s).
            var byReason = string.Join(", ", refusals.Where(r => r is not null).GroupBy(r => $"{r!.Code}/{r.Scope}").Select(g => $"{g.Key} x{g.Count()}"));
            Assert.True(admitted >= Capacity - (2 * Capacity / 10), $"admitted only {admitted} in {elapsed:0.00} s; refused: {byReason}");
            Assert.All(refusals.Where(r => r is not null), r => Assert.Equal(RefusalCodes.RateLimited, r!.Code));
        });
    }

    [Fact]
    public async Task Tightening_a_limit_stops_tokens_a_silo_had_leased_on_the_next_call()
    {
        await OnClusterAsync(1, async cluster =>
        {
            await SetAsync(cluster, new RateLimitSetting("lease-tight", "agent", "runaway", 1000, 200, "test", DateTimeOffset.UtcNow));
            var silo = cluster.SiloServices[0];
            var call = new CallIdentity("lease-tight", "runaway", null, "s", GuardCluster.ServerId, "read_tool");
            for (var i = 0; i < 300; i++) Assert.Null(await GuardCluster.EvaluateAsync(silo, call));

            // The incident: the operator cuts the agent to 2 calls, barely refilling.
            await SetAsync(cluster, new RateLimitSetting("lease-tight", "agent", "runaway", 2, 0.001, "test", DateTimeOffset.UtcNow));

            var results = new List<Refusal?>();
            for (var i = 0; i < 6; i++) results.Add(await GuardCluster.EvaluateAsync(silo, call));
            Assert.Equal(2, results.Count(r => r is null));
            Assert.All(results.Skip(2), r =>
            {
                Assert.Equal(RefusalCodes.RateLimited, r!.Code);
                Assert.Equal("agent", r.Scope);
            });
        });
    }

    [Fact]
    public async Task With_no_lease_lifetime_every_call_asks_the_grain_and_a_burst_spends_the_bucket_exactly()
    {
        // LeaseLifetime 0 is the exact mode an operator can choose: no tokens are held on a silo, so none are
        // stranded there either, and a burst across silos is admitted exactly what the bucket holds.
        var exact = new Dictionary<string, string?> { ["ControlPlane:RateLimits:LeaseLifetime"] = "00:00:00" };
        await OnClusterAsync(2, async cluster =>
        {
            const int Capacity = 120;
            const double Refill = 1;
            await SetAsync(cluster, new RateLimitSetting("lease-exact", "tenant", null, Capacity, Refill, "test", DateTimeOffset.UtcNow));

            var silos = cluster.SiloServices;
            var leases = silos.Select(sp => sp.GetRequiredService<RateLimitLeases>()).ToArray();
            var before = leases.Sum(l => l.GrainRoundTrips);
            var clock = Stopwatch.StartNew();
            const int Calls = 400;
            var refusals = await Task.WhenAll(Enumerable.Range(0, Calls).Select(i => Task.Run(() => GuardCluster.EvaluateAsync(
                silos[i % silos.Count],
                new CallIdentity("lease-exact", "agent-" + (i % 4), null, "session-" + i, GuardCluster.ServerId, "read_tool")))));
            var elapsed = clock.Elapsed.TotalSeconds;

            var admitted = refusals.Count(r => r is null);
            output.WriteLine($"capacity {Capacity} + {Refill}/s over {elapsed:0.00} s; admitted {admitted}; {leases.Sum(l => l.GrainRoundTrips) - before} round trips");
            Assert.Equal(Calls, leases.Sum(l => l.GrainRoundTrips) - before);
            Assert.InRange(admitted, Capacity, Capacity + (int)Math.Ceiling(Refill * elapsed));
            Assert.All(refusals.Where(r => r is not null), r => Assert.Equal(RefusalCodes.RateLimited, r!.Code));
        }, exact);
    }

    [Fact]
    public async Task Returned_tokens_never_lift_a_bucket_above_its_capacity_nor_take_from_it()
    {
        await OnClusterAsync(1, async cluster =>
        {
            var grain = cluster.Client.GetGrain<ITenantRateLimitGrain>("lease-return");
            BucketDemand[] agent = [new(BucketLevel.Agent, "a", 10, 0.001)];

            var lease = await grain.LeaseAsync(agent, 1, [5], null);
            Assert.Equal([5d], lease.Granted!);

            // More than was ever leased (a confused silo), then a negative amount: the bucket ends full, no fuller,
            // and nothing is taken by a "return".
            Assert.True((await grain.LeaseAsync(agent, 1, [1], [100])).Allowed);
            Assert.True((await grain.LeaseAsync(agent, 1, [1], [-50])).Allowed);

            var admitted = 0;
            while ((await grain.TakeAsync(agent, 1)).Allowed) admitted++;
            Assert.Equal(8, admitted);
        });
    }

    private static async Task OnClusterAsync(short silos, Func<GuardCluster, Task> test, IReadOnlyDictionary<string, string?>? settings = null)
    {
        await using var cluster = await GuardCluster.StartAsync(silos, settings: settings);
        try
        {
            await test(cluster);
        }
        finally
        {
            cluster.DeleteDatabase();
        }
    }

    /// <summary>Sets a tenant's limit and waits until every silo's policy has it, as the guard reads it.</summary>
    private static async Task SetAsync(GuardCluster cluster, RateLimitSetting setting)
    {
        await cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton).SetRateLimitAsync(setting);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!cluster.SiloServices.All(sp => sp.GetRequiredService<GuardStateCache>().Policy.RateLimit(setting.TenantId, setting.Scope, setting.Subject) is { } seen
            && seen.Capacity == setting.Capacity && seen.RefillPerSecond == setting.RefillPerSecond))
        {
            Assert.True(DateTime.UtcNow < deadline, "The limit did not reach every silo within 10 s.");
            await Task.Delay(20);
        }
    }
}
