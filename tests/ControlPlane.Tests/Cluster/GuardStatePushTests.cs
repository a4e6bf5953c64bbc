using ControlPlane.GuardState;
using ControlPlane.Guard.State;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Cluster;

/// <summary>
/// The owner pushes each change to every silo with its own deadline: a silo that hangs (cut off, or dead but not yet
/// declared so) delays no flip past the push deadline, the others enforce the flip when it returns, and the hung silo
/// catches up by its own poll.
/// </summary>
public sealed class GuardStatePushTests
{
    [Fact]
    public async Task A_silo_that_does_not_take_a_push_delays_a_flip_by_the_push_deadline_at_most_and_catches_up_by_polling()
    {
        using var release = new ManualResetEventSlim(false);
        await using var cluster = await GuardCluster.StartAsync(silos: 3, configureSilo: (name, services) =>
        {
            if (name == "Secondary_2") services.AddSingleton<IGuardStateListener>(sp => new HungListener(sp.GetRequiredService<GuardStateCache>(), release));
        });
        var silos = cluster.SiloServices;
        var owner = cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await owner.SetKillSwitchAsync(new KillTarget(KillScope.Agent, TenantId: "t1", AgentId: "a1"), "a flip while a silo hangs", "test");
            var took = clock.Elapsed;

            // The hung silo holds its push for 30 s; the flip came back long before, at the push deadline (500 ms).
            Assert.True(took < TimeSpan.FromSeconds(10), $"The flip waited {took.TotalMilliseconds:F0} ms for a hung silo.");

            // Every silo enforces it: two by the push, the hung one by its 200 ms version poll.
            foreach (var silo in silos)
            {
                await Infrastructure.Eventually.TrueAsync(
                    async () => (await GuardCluster.EvaluateAsync(silo, KillSwitchClusterTests.Base))?.Code == RefusalCodes.Killed,
                    TimeSpan.FromSeconds(10), "every silo to enforce the flip");
            }
        }
        finally
        {
            release.Set();
        }
    }

    /// <summary>A silo whose push end hangs (its cache still polls): what a cut-off silo looks like to the owner.</summary>
    private sealed class HungListener(GuardStateCache cache, ManualResetEventSlim release) : IGuardStateListener
    {
        public long Apply(GuardStateSnapshot snapshot)
        {
            release.Wait(TimeSpan.FromSeconds(30));
            return cache.Apply(snapshot);
        }

        public GuardStateHeld Describe() => cache.Describe();
    }
}
