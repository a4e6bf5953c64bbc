using ControlPlane.Availability;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Cluster;

/// <summary>
/// Kill switches never lie through a grain-store outage: a flip the store did not take changes nothing anywhere and
/// its retry works; a write whose answer was lost stands and reaches every silo; a reactivated owner continues from
/// what was stored, and its next flip is enforced on every silo before it returns.
/// </summary>
public sealed class GuardStateOutageTests
{
    private const string GuardStateName = "guard-state";

    private static CallIdentity CallOf(string tenant) => new(tenant, "agent-o", "user-o", "session-o", GuardCluster.ServerId, "read_tool");

    private static KillTarget TenantSwitch(string tenant) => new(KillScope.Tenant, TenantId: tenant);

    [Fact]
    public async Task A_flip_during_an_outage_changes_nothing_its_retry_works_and_a_reactivated_owner_numbers_on()
    {
        var faults = new StorageFaults();
        faults.StateNames.Add(GuardStateName);
        await using var cluster = await GuardCluster.StartAsync(silos: 3, faults: faults);
        var owner = cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        await owner.SetKillSwitchAsync(TenantSwitch("before"), "baseline", "test");
        var before = await owner.GetVersionStampAsync();

        // The store goes down: the flip fails with a typed, retryable error that crossed to the client intact...
        faults.Down = true;
        var refused = await Assert.ThrowsAsync<StoreUnavailableException>(() => owner.SetKillSwitchAsync(TenantSwitch("outage"), "during the outage", "test"));
        Assert.Equal(RefusalCodes.GuardUnavailable, refused.Code);
        Assert.True(refused.RetryAfterSeconds > 0);
        // ...and changed nothing: not served, not enforced on any silo, and a retry is refused again, not "already set".
        Assert.DoesNotContain((await owner.GetSnapshotAsync()).KillSwitches, s => s.Target.TenantId == "outage");
        Assert.Equal(before, await owner.GetVersionStampAsync());
        foreach (var silo in cluster.SiloServices) Assert.Null(await GuardCluster.EvaluateAsync(silo, CallOf("outage")));
        await Assert.ThrowsAsync<StoreUnavailableException>(() => owner.SetKillSwitchAsync(TenantSwitch("outage"), "retry during the outage", "test"));

        // The store is back: the retry works like a first try, and is in force on every silo when it returns.
        faults.Down = false;
        var change = await owner.SetKillSwitchAsync(TenantSwitch("outage"), "after the outage", "test");
        Assert.True(change.Created);
        Assert.Equal(before.Version + 1, change.Version);
        foreach (var silo in cluster.SiloServices) Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, CallOf("outage")))?.Code);

        // The owner is deactivated and comes back from the store; its next flip gets a new number and a new stamp,
        // and every silo enforces it before the call returns.
        var stored = await owner.GetVersionStampAsync();
        await cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var next = await owner.SetKillSwitchAsync(TenantSwitch("after-restart"), "after reactivation", "test");
        Assert.Equal(stored.Version + 1, next.Version);
        foreach (var silo in cluster.SiloServices)
        {
            Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, CallOf("after-restart")))?.Code);
            Assert.Equal(await owner.GetVersionStampAsync(), silo.GetRequiredService<GuardStateCache>().Id);
        }
    }

    [Fact]
    public async Task A_write_whose_answer_was_lost_stands_and_is_enforced_everywhere()
    {
        var faults = new StorageFaults();
        faults.StateNames.Add(GuardStateName);
        await using var cluster = await GuardCluster.StartAsync(silos: 2, faults: faults);
        var owner = cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

        faults.NextWriteLandsThenFails = true;
        var change = await owner.SetKillSwitchAsync(TenantSwitch("lost-answer"), "the store took it", "test");
        Assert.True(change.Created);
        Assert.Equal(1, faults.Failed);
        foreach (var silo in cluster.SiloServices) Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, CallOf("lost-answer")))?.Code);
    }

    [Fact]
    public async Task A_write_that_landed_while_the_store_could_not_be_read_reaches_every_silo_once_it_is_back()
    {
        var faults = new StorageFaults();
        faults.StateNames.Add(GuardStateName);
        await using var cluster = await GuardCluster.StartAsync(silos: 2, faults: faults);
        var owner = cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

        // The write lands, its answer is lost, and the read-back fails too: the grain cannot know, so the operator is
        // told it failed and the grain keeps serving the last state it knows was stored.
        faults.NextWriteLandsThenDown = true;
        var unknown = await Assert.ThrowsAsync<StoreUnavailableException>(() => owner.SetKillSwitchAsync(TenantSwitch("unknown"), "landed unseen", "test"));
        Assert.Equal(RefusalCodes.GuardUnavailable, unknown.Code);
        foreach (var silo in cluster.SiloServices) Assert.Null(await GuardCluster.EvaluateAsync(silo, CallOf("unknown")));

        // Once the store answers again, the grain reads it back on its own and every silo converges on what it holds.
        faults.Down = false;
        await Eventually.TrueAsync(async () =>
        {
            foreach (var silo in cluster.SiloServices)
            {
                if ((await GuardCluster.EvaluateAsync(silo, CallOf("unknown")))?.Code != RefusalCodes.Killed) return false;
            }

            return true;
        }, TimeSpan.FromSeconds(20), "the switch the store took to reach every silo");
        Assert.False((await owner.SetKillSwitchAsync(TenantSwitch("unknown"), "retry", "test")).Created);
    }
}
