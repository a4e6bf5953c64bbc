namespace ControlPlane.Sessions;

/// <summary>
/// Deletes session records nobody has written for the retention period (closed sessions, and sessions their clients
/// abandoned without closing), on a schedule (an Orleans reminder). One instance.
/// </summary>
[Alias("cp.ISessionRecordRetentionGrain")]
public interface ISessionRecordRetentionGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    /// <summary>
    /// Makes the schedule match configuration: every <paramref name="period"/>, delete the records last written more
    /// than <paramref name="retention"/> ago. A zero retention keeps every record and removes the schedule. Idempotent;
    /// called at every silo start.
    /// </summary>
    [Alias("EnsureScheduled")]
    Task EnsureScheduledAsync(TimeSpan period, TimeSpan retention);

    /// <summary>Deletes the expired records now; returns how many. Zero when retention is off or not configured yet.</summary>
    [Alias("Run")]
    Task<long> RunAsync();
}
