using ControlPlane.Sessions;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Sessions;

/// <summary>
/// Keeps session records from piling up: every closed session and every session its client abandoned leaves a record
/// that nothing else ever deletes. Records are deleted once nobody has written them for the retention period. A session
/// is written when it opens and closes, and hourly while it is in use (by the silo serving it, and when it is resumed),
/// so only closed and abandoned sessions get that old; one that comes back after all gets 404 and its client opens a
/// new session, as MCP prescribes.
/// </summary>
public sealed partial class SessionRecordRetentionGrain(
    [PersistentState("session-retention", StorageNames.ControlPlane)] IPersistentState<SessionRecordRetentionState> state,
    ISessionRecordSweeper sweeper,
    TimeProvider time,
    ILogger<SessionRecordRetentionGrain> logger) : Grain, ISessionRecordRetentionGrain, IRemindable
{
    private const string ReminderName = "session-record-retention";

    public async Task EnsureScheduledAsync(TimeSpan period, TimeSpan retention)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retention, TimeSpan.Zero);
        if (state.State.Retention != retention)
        {
            // Kept with the grain: a reminder can fire on a new activation before this silo's start registers again.
            state.State.Retention = retention;
            await state.WriteOrRetireAsync(this);
        }

        if (retention == TimeSpan.Zero)
        {
            if (await this.GetReminder(ReminderName) is { } reminder) await this.UnregisterReminder(reminder);
            return;
        }

        await this.RegisterOrUpdateReminder(ReminderName, period, period);
    }

    public async Task<long> RunAsync()
    {
        if (state.State.Retention is not { } retention || retention <= TimeSpan.Zero) return 0;
        var cutoff = time.GetUtcNow() - retention;
        var deleted = await sweeper.DeleteUnwrittenSinceAsync(cutoff, CancellationToken.None);
        if (deleted > 0) LogDeleted(logger, deleted, cutoff);
        return deleted;
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == ReminderName) await RunAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Session retention deleted {Count} session records last written before {Cutoff:O}.")]
    private static partial void LogDeleted(ILogger logger, long count, DateTimeOffset cutoff);
}

[GenerateSerializer, Alias("cp.SessionRecordRetentionState")]
public sealed class SessionRecordRetentionState
{
    [Id(0)] public TimeSpan? Retention { get; set; }
}
