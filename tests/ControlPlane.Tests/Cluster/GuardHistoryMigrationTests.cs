using ControlPlane.Grains;
using ControlPlane.Grains.GuardState;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace ControlPlane.Tests.Cluster;

/// <summary>
/// A guard state record written before the history moved out (history inside the record) still loads; its history
/// is handed to the history grain with the next flip, and from then on the record carries none.
/// </summary>
public sealed class GuardHistoryMigrationTests
{
    [Fact]
    public async Task A_record_with_history_inside_loads_and_hands_its_history_over_with_the_next_flip()
    {
        string databasePath;
        GrainId ownerId;
        var at = DateTimeOffset.UtcNow.AddDays(-1);
        var legacyFlips = Enumerable.Range(0, 150)
            .Select(i => new KillSwitchEvent($"ks_legacy{i:D4}", new KillTarget(KillScope.Tenant, TenantId: "legacy"), i % 2 == 0 ? "set" : "clear", $"old flip {i}", "old-operator", at.AddMinutes(i)))
            .ToList();
        var legacyPolicy = Enumerable.Range(0, 5).Select(i => new PolicyEvent("rate-limit", $"legacy|{i}", "removed", "old", "old-operator", at.AddMinutes(i))).ToList();
        var active = new KillSwitch("ks_stillactive01", new KillTarget(KillScope.Tenant, TenantId: "legacy"), "still on", "old-operator", at);

        await using (var first = await GuardCluster.StartAsync(silos: 1))
        {
            databasePath = first.DatabasePath;
            ownerId = first.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton).GetGrainId();
            var storage = first.SiloServices[0].GetRequiredKeyedService<IGrainStorage>(StorageNames.ControlPlane);
            await storage.WriteStateAsync("guard-state", ownerId, new GrainState<GuardStateRecord>(new GuardStateRecord
            {
                Version = 7,
                Stamp = "legacy-stamp",
                Switches = [active],
                History = legacyFlips,
                PolicyHistory = legacyPolicy,
            }));
        }

        await using var second = await GuardCluster.StartAsync(silos: 1, databasePath: databasePath);
        var owner = second.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        Assert.Equal(7, await owner.GetVersionAsync());
        Assert.Contains((await owner.GetSnapshotAsync()).KillSwitches, s => s.Id == active.Id);

        // Before any flip, the old history is already what the owner reports (newest first, the last 100).
        var before = await owner.GetHistoryAsync(1000);
        Assert.Equal(GuardStateLimits.HistoryKept, before.Length);
        Assert.Equal(legacyFlips[^1], before[0]);

        var change = await owner.SetKillSwitchAsync(new KillTarget(KillScope.Agent, TenantId: "legacy", AgentId: "new"), "new flip", "operator");
        Assert.True(change.Created);

        var history = await owner.GetHistoryAsync(1000);
        Assert.Equal(GuardStateLimits.HistoryKept, history.Length);
        Assert.Equal("new flip", history[0].Reason);
        Assert.Equal(legacyFlips[^1], history[1]);
        Assert.Equal(legacyPolicy[^1], (await owner.GetPolicyHistoryAsync(10))[0]);

        // The handover is done: the next flip writes a record without the old history.
        await owner.ClearKillSwitchAsync(change.Switch.Id, "done", "operator");
        var storage2 = second.SiloServices[0].GetRequiredKeyedService<IGrainStorage>(StorageNames.ControlPlane);
        var stored = new GrainState<GuardStateRecord>(new GuardStateRecord());
        await storage2.ReadStateAsync("guard-state", ownerId, stored);
        Assert.NotNull(stored.State);
        Assert.Empty(stored.State.History);
        Assert.Empty(stored.State.PolicyHistory);
        Assert.Equal(9, stored.State.Version);
        Assert.Contains(stored.State.Switches, s => s.Id == active.Id);
        var kept = new GrainState<GuardHistoryRecord>(new GuardHistoryRecord());
        await storage2.ReadStateAsync("guard-history", second.Client.GetGrain<IGuardHistoryGrain>(IGuardHistoryGrain.Singleton).GetGrainId(), kept);
        Assert.NotNull(kept.State);
        Assert.Equal(GuardStateLimits.HistoryKept, kept.State.Flips.Count);
        Assert.Equal("clear", kept.State.Flips[^1].Action);
        second.DeleteDatabase();
    }
}
