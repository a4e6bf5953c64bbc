using ControlPlane.Drills;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ControlPlane.Grains.Drills;

/// <summary>
/// One activation for the cluster, so drills never overlap: two drills on the same synthetic target would
/// clear each other's switch. Drills run on this activation's silo; results are kept per level.
/// </summary>
public sealed partial class DrillSchedulerGrain(
    [PersistentState("drills", StorageNames.ControlPlane)] IPersistentState<DrillLedger> state,
    IKillSwitchDrillRunner runner,
    TimeProvider time,
    ILogger<DrillSchedulerGrain> logger) : Grain, IDrillSchedulerGrain, IRemindable
{
    private const string ReminderName = "kill-switch-drills";

    public async Task EnsureScheduledAsync(TimeSpan interval, TimeSpan firstRunDelay)
    {
        // Reminders of the embedded default live in memory and are re-registered at every start, so the first
        // tick is computed from the results: a restart must not push a due drill another full interval away.
        var now = time.GetUtcNow();
        var runs = DrillLevels.Scheduled.Select(l => state.State.Last.TryGetValue(l, out var r) ? r.FinishedAt : (DateTimeOffset?)null).ToList();
        var oldest = runs.Contains(null) ? null : runs.Min();
        var due = oldest is { } at ? at + interval - now : firstRunDelay;
        if (due < firstRunDelay) due = firstRunDelay;
        await this.RegisterOrUpdateReminder(ReminderName, due, interval);
    }

    public async Task UnscheduleAsync()
    {
        if (await this.GetReminder(ReminderName) is { } reminder) await this.UnregisterReminder(reminder);
    }

    public async Task<DrillResult> RunAsync(DrillLevel level, string ranBy)
    {
        var result = await runner.ExecuteAsync(level, ranBy, CancellationToken.None);
        await KeepAsync(result);
        return result;
    }

    public Task<DrillRecord[]> GetLastResultsAsync() => Task.FromResult(DrillLevels.All
        .Select(l => new DrillRecord(l, state.State.Last.GetValueOrDefault(l), state.State.LastPassed.GetValueOrDefault(l)))
        .ToArray());

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != ReminderName) return;
        foreach (var level in DrillLevels.Scheduled)
        {
            var result = await runner.ExecuteAsync(level, "scheduler", CancellationToken.None);
            if (!result.Passed) LogDrillFailed(logger, level.ToWireName(), result.Failure ?? "");
            await KeepAsync(result);
        }
    }

    private async Task KeepAsync(DrillResult result)
    {
        state.State.Last[result.Level] = result;
        if (result.Passed) state.State.LastPassed[result.Level] = result;
        await state.WriteOrRetireAsync(this);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Scheduled kill-switch drill at the {Level} level FAILED: {Failure}")]
    private static partial void LogDrillFailed(ILogger logger, string level, string failure);
}

[GenerateSerializer, Alias("cp.DrillLedger")]
public sealed class DrillLedger
{
    [Id(0)] public Dictionary<DrillLevel, DrillResult> Last { get; set; } = [];

    [Id(1)] public Dictionary<DrillLevel, DrillResult> LastPassed { get; set; } = [];
}
