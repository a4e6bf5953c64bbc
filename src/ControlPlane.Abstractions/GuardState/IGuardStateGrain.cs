using ControlPlane.KillSwitches;
using ControlPlane.Policy;

namespace ControlPlane.GuardState;

/// <summary>
/// The single, durable owner of cluster-wide guard state (kill switches, token revocations, tool policy). Every
/// change bumps the version and gets a new stamp, is persisted, and is pushed to every silo before the call returns.
/// A change the store did not take changes nothing, and fails with <see cref="Availability.StoreUnavailableException"/>.
/// </summary>
[Alias("cp.IGuardStateGrain")]
public interface IGuardStateGrain : IGrainWithIntegerKey
{
    /// <summary>The well-known key of the one instance.</summary>
    public const long Singleton = 0;

    [Alias("GetVersion"), AlwaysInterleave]
    Task<long> GetVersionAsync();

    /// <summary>The number and stamp of the state the grain holds, which is always the state last made durable.</summary>
    [Alias("GetVersionStamp"), AlwaysInterleave]
    Task<GuardStateVersion> GetVersionStampAsync();

    [Alias("GetSnapshot"), AlwaysInterleave]
    Task<GuardStateSnapshot> GetSnapshotAsync();

    [Alias("SetKillSwitch")]
    Task<KillSwitchChange> SetKillSwitchAsync(KillTarget target, string reason, string setBy);

    /// <summary>Clears a switch by id. Returns null when no such switch is active.</summary>
    [Alias("ClearKillSwitch")]
    Task<KillSwitch?> ClearKillSwitchAsync(string switchId, string reason, string clearedBy);

    [Alias("RevokeToken")]
    Task<long> RevokeTokenAsync(string tokenId, DateTimeOffset? expiresAt);

    /// <summary>Switches a server between read-only (the default) and read-write for one tenant.</summary>
    [Alias("SetServerMode")]
    Task<ServerModeSetting> SetServerModeAsync(string tenantId, string serverId, bool readWrite, string reason, string setBy);

    [Alias("SetClassification")]
    Task<ToolClassificationOverride> SetClassificationAsync(string serverId, string toolName, string? tenantId, bool isAction, string reason, string setBy);

    /// <summary>Sets (or, with a null schema, removes) an operator's schema tightening for a tool.</summary>
    [Alias("SetSchemaOverride")]
    Task<SchemaOverride?> SetSchemaOverrideAsync(string serverId, string toolName, string? tenantId, string? schemaJson, string reason, string setBy);

    /// <summary>Sets a rate limit (or, with capacity 0, removes it).</summary>
    [Alias("SetRateLimit")]
    Task SetRateLimitAsync(ControlPlane.RateLimits.RateLimitSetting setting);

    /// <summary>Sets (or, with null, removes) a tool's result projection.</summary>
    [Alias("SetProjection")]
    Task SetProjectionAsync(string serverId, string toolName, ProjectionSetting? projection, string reason, string setBy);

    [Alias("GetPolicyHistory"), AlwaysInterleave]
    Task<PolicyEvent[]> GetPolicyHistoryAsync(int limit);

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
