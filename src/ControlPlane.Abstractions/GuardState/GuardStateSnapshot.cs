using ControlPlane.KillSwitches;
using ControlPlane.Policy;

namespace ControlPlane.GuardState;

/// <summary>
/// Everything a silo needs to decide a call without leaving the process: active kill switches, revoked
/// token ids, and tool policy (server modes, classification and schema overrides). Versioned so that a silo can tell, cheaply, whether its copy is current.
/// Records that cross silos or reach storage hold arrays, not interfaces: a collection expression typed
/// as an interface can be a compiler-made type that neither the Orleans codec nor the JSON store can name.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.GuardStateSnapshot")]
public sealed record GuardStateSnapshot(
    [property: Id(0)] long Version,
    [property: Id(1)] KillSwitch[] KillSwitches,
    [property: Id(2)] RevokedToken[] RevokedTokens,
    [property: Id(3)] ServerModeSetting[]? ServerModes = null,
    [property: Id(4)] ToolClassificationOverride[]? ClassificationOverrides = null,
    [property: Id(5)] SchemaOverride[]? SchemaOverrides = null,
    [property: Id(6)] ControlPlane.RateLimits.RateLimitSetting[]? RateLimits = null,
    [property: Id(7)] ProjectionSetting[]? Projections = null,
    [property: Id(8)] string? Stamp = null)
{
    public static GuardStateSnapshot Empty { get; } = new(0, [], []);

    /// <summary>Which version this is: its number, and the stamp that tells two states of one number apart.</summary>
    public GuardStateVersion Id => new(Version, Stamp);
}

/// <summary>
/// A guard state's number and stamp. The stamp is new with every durable change, so a silo that holds a state the
/// store never kept (same number, other content) sees that it differs, and replaces it.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.GuardStateVersion")]
public readonly record struct GuardStateVersion(
    [property: Id(0)] long Version,
    [property: Id(1)] string? Stamp);

/// <summary>A revoked token id, kept in the snapshot until the token would have expired anyway.</summary>
[GenerateSerializer, Immutable, Alias("cp.RevokedToken")]
public sealed record RevokedToken(
    [property: Id(0)] string TokenId,
    [property: Id(1)] DateTimeOffset? ExpiresAt);

/// <summary>
/// Receives guard state pushed to this silo. Implemented by the silo-local cache that the guard reads.
/// </summary>
public interface IGuardStateListener
{
    /// <summary>
    /// Applies a snapshot if it is newer than the one held, or of the same number with another stamp. Returns the
    /// version now held.
    /// </summary>
    long Apply(GuardStateSnapshot snapshot);

    /// <summary>What this silo holds now.</summary>
    GuardStateHeld Describe();
}
