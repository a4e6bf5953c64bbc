using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.RateLimits;
using ControlPlane.Refusals;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Cluster;

/// <summary>A burst from many sessions across two silos admits what the budget allows, within 1%.</summary>
public sealed class RateLimitClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_concurrent_burst_across_two_silos_stays_within_the_budget()
    {
        // Only the tenant's budget is under test. The agent and user buckets are made too large to bind: with their
        // default shapes, the leases that expire unspent during a slow burst (a lease's tokens are spent from the
        // bucket when granted) can leave a user's bucket short, and the refusal then rightly names the user level.
        await using var cluster = await GuardCluster.StartAsync(silos: 2, settings: new Dictionary<string, string?>
        {
            ["ControlPlane:RateLimits:Agent:Capacity"] = "1000000",
            ["ControlPlane:RateLimits:Agent:RefillPerSecond"] = "1000000",
            ["ControlPlane:RateLimits:User:Capacity"] = "1000000",
            ["ControlPlane:RateLimits:User:RefillPerSecond"] = "1000000",
        });
        try
        {
            const int budget = 500;
            var owner = cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
            await owner.SetRateLimitAsync(new RateLimitSetting("burst", "tenant", null, budget, 0, "test", DateTimeOffset.UtcNow));

            var silos = cluster.SiloServices;
            var calls = Enumerable.Range(0, 2000).Select(i => Task.Run(() => GuardCluster.EvaluateAsync(
                silos[i % silos.Count],
                new CallIdentity("burst", "agent-" + (i % 40), "user-" + (i % 13), "session-" + i, GuardCluster.ServerId, "read_tool")))).ToList();
            var refusals = await Task.WhenAll(calls);

            var admitted = refusals.Count(r => r is null);
            output.WriteLine($"budget {budget}, offered 2000 calls across {silos.Count} silos, admitted {admitted}");
            Assert.InRange(admitted, budget * 0.99, budget * 1.01);
            Assert.All(refusals.Where(r => r is not null), r =>
            {
                Assert.Equal(RefusalCodes.RateLimited, r!.Code);
                Assert.Equal("tenant", r.Scope);
                Assert.True(r.RetryAfterSeconds > 0);
            });
        }
        finally
        {
            cluster.DeleteDatabase();
        }
    }
}
