using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;

namespace ControlPlane.Tests.Cluster;

/// <summary>Kill state outlives silos: a stopped silo, a silo that joins later, and a full cluster restart on the same SQLite file.</summary>
public sealed class KillSwitchDurabilityTests
{
    private static readonly CallIdentity Call = new("tenant-d", "agent-d", "user-d", "session-d", GuardCluster.ServerId, "read_tool");

    [Fact]
    public async Task Kill_state_survives_a_silo_stop_a_late_joiner_and_a_full_restart()
    {
        string databasePath;
        string switchId;
        await using (var first = await GuardCluster.StartAsync(silos: 2))
        {
            databasePath = first.DatabasePath;
            var owner = first.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
            switchId = (await owner.SetKillSwitchAsync(new KillTarget(KillScope.Tenant, TenantId: "tenant-d"), "durability drill", "test")).Switch.Id;

            // Stop the secondary silo; the survivor keeps refusing and the owner grain, wherever it was, comes back.
            var secondary = first.Cluster.Silos[1];
            await first.Cluster.StopSiloAsync(secondary);
            foreach (var silo in first.SiloServices) Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, Call))?.Code);
            Assert.Contains((await owner.GetSnapshotAsync()).KillSwitches, s => s.Id == switchId);

            // A silo that joins later loads the state before it is considered loaded.
            await first.Cluster.StartAdditionalSiloAsync();
            await first.WaitUntilLoadedAsync();
            Assert.Equal(2, first.SiloServices.Count);
            foreach (var silo in first.SiloServices) Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, Call))?.Code);
        }

        // A whole new cluster on the same database: the switch is still there, on every silo.
        await using (var second = await GuardCluster.StartAsync(silos: 2, databasePath: databasePath))
        {
            foreach (var silo in second.SiloServices) Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, Call))?.Code);

            var owner = second.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
            Assert.NotNull(await owner.ClearKillSwitchAsync(switchId, "drill over", "test"));
            foreach (var silo in second.SiloServices) Assert.Null(await GuardCluster.EvaluateAsync(silo, Call));
            second.DeleteDatabase();
        }
    }
}
