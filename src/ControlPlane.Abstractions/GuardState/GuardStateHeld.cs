namespace ControlPlane.GuardState;

/// <summary>
/// The guard state one silo enforces: its version, and whether the silo still trusts it (a silo that has not
/// confirmed its state with the owner within the staleness bound refuses action tools).
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.GuardStateHeld")]
public sealed record GuardStateHeld(
    [property: Id(0)] GuardStateVersion Held,
    [property: Id(1)] bool Loaded,
    [property: Id(2)] bool Fresh,
    [property: Id(3)] double SecondsSinceConfirmed);
