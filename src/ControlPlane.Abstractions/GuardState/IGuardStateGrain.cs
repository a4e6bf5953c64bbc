using ControlPlane.KillSwitches;

namespace ControlPlane.GuardState;

/// <summary>
/// The single, durable owner of cluster-wide guard state (kill switches and token revocations).
/// Every change bumps the version, is persisted, and is pushed to every silo before the call returns.
/// </summary>
[Alias("cp.IGuardStateGrain")]
public interface IGuardStateGrain : IGrainWithIntegerKey
{
    /// <summary>The well-known key of the one instance.</summary>
    public const long Singleton = 0;

    [Alias("GetVersion"), AlwaysInterleave]
    Task<long> GetVersionAsync();

    [Alias("GetSnapshot"), AlwaysInterleave]
    Task<GuardStateSnapshot> GetSnapshotAsync();

    [Alias("SetKillSwitch")]
    Task<KillSwitchChange> SetKillSwitchAsync(KillTarget target, string reason, string setBy);

    /// <summary>Clears a switch by id. Returns null when no such switch is active.</summary>
    [Alias("ClearKillSwitch")]
    Task<KillSwitch?> ClearKillSwitchAsync(string switchId, string reason, string clearedBy);

    [Alias("RevokeToken")]
    Task<long> RevokeTokenAsync(string tokenId, DateTimeOffset? expiresAt);

    /// <summary>Recent flips (set and clear), newest first, for the console and the audit of who did what.</summary>
    [Alias("GetHistory"), AlwaysInterleave]
    Task<KillSwitchEvent[]> GetHistoryAsync(int limit);
}

[GenerateSerializer, Immutable, Alias("cp.KillSwitchEvent")]
public sealed record KillSwitchEvent(
    [property: Id(0)] string SwitchId,
    [property: Id(1)] KillTarget Target,
    [property: Id(2)] string Action,
    [property: Id(3)] string Reason,
    [property: Id(4)] string By,
    [property: Id(5)] DateTimeOffset At);
