using ControlPlane.Drills;
using ControlPlane.Host.Drills;
using ControlPlane.Operators;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Operations;

/// <summary>A level's drill status: its last run, its last passing run, and whether either is too old to trust.</summary>
public sealed record DrillStatus(DrillLevel Level, DrillResult? Last, DrillResult? LastPassed, TimeSpan? Age, bool Stale, bool Scheduled);

/// <summary>Runs kill-switch drills on demand and reports when each level was last drilled. Used by the REST API, the CLI and the console.</summary>
internal sealed class DrillService(IGrainFactory grains, IOptions<DrillOptions> options, TimeProvider time)
{
    private IDrillSchedulerGrain Scheduler => grains.GetGrain<IDrillSchedulerGrain>(IDrillSchedulerGrain.Singleton);

    /// <summary>
    /// Runs one drill now. A global drill stops every tenant for the second or so it takes, so it needs an operator
    /// who sees every tenant and an explicit <paramref name="confirmGlobal"/>.
    /// </summary>
    public async Task<DrillResult> RunAsync(OperatorAccount by, DrillLevel level, bool confirmGlobal = false, CancellationToken cancellationToken = default)
    {
        by.RequireRole(OperatorRoles.Operator);
        if (level == DrillLevel.Global)
        {
            by.RequireAllTenants("A global drill");
            if (!confirmGlobal)
            {
                throw InvalidRequestException.For("confirmGlobal",
                    "A global drill sets a real global kill switch: every tenant's calls are refused until the drill clears it (about a second). " +
                    "Run it in a maintenance window and pass confirmGlobal: true.");
            }
        }

        return await Scheduler.RunAsync(level, by.Id).WaitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<DrillStatus>> ListAsync(OperatorAccount by, CancellationToken cancellationToken = default)
    {
        by.RequireRole(OperatorRoles.Viewer);
        var records = await Scheduler.GetLastResultsAsync().WaitAsync(cancellationToken);
        var now = time.GetUtcNow();
        var staleAfter = options.Value.StaleAfter;
        return [.. records.Select(r =>
        {
            var age = r.LastPassed is { } passed ? now - passed.FinishedAt : (TimeSpan?)null;
            return new DrillStatus(r.Level, r.Last, r.LastPassed, age, Stale: age is null || age > staleAfter, Scheduled: DrillLevels.Scheduled.Contains(r.Level));
        })];
    }
}
