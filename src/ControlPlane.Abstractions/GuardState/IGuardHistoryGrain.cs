using ControlPlane.Policy;

namespace ControlPlane.GuardState;

/// <summary>
/// The recent history of kill switch flips and policy changes, kept apart from the guard state record so that the
/// record every flip rewrites, and the snapshot every silo holds, carry only what is in force. The owner appends
/// after each durable change; the audit trail, not this window, is the full record.
/// </summary>
[Alias("cp.IGuardHistoryGrain")]
public interface IGuardHistoryGrain : IGrainWithIntegerKey
{
    /// <summary>The well-known key of the one instance.</summary>
    public const long Singleton = 0;

    /// <summary>Appends events in order; an event already held (a retried append) is not added twice.</summary>
    [Alias("Append")]
    Task AppendAsync(KillSwitchEvent[] flips, PolicyEvent[] policy);

    /// <summary>Recent flips, newest first.</summary>
    [Alias("GetFlips"), AlwaysInterleave]
    Task<KillSwitchEvent[]> GetFlipsAsync(int limit);

    /// <summary>Recent policy changes, newest first.</summary>
    [Alias("GetPolicy"), AlwaysInterleave]
    Task<PolicyEvent[]> GetPolicyAsync(int limit);
}
