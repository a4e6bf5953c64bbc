namespace ControlPlane.KillSwitches;

/// <summary>An active kill switch: what it covers, and who set it, when and why.</summary>
[GenerateSerializer, Immutable, Alias("cp.KillSwitch")]
public sealed record KillSwitch(
    [property: Id(0)] string Id,
    [property: Id(1)] KillTarget Target,
    [property: Id(2)] string Reason,
    [property: Id(3)] string SetBy,
    [property: Id(4)] DateTimeOffset SetAt);

/// <summary>The outcome of asking for a switch: the switch, and whether this request created it.</summary>
[GenerateSerializer, Immutable, Alias("cp.KillSwitchChange")]
public sealed record KillSwitchChange(
    [property: Id(0)] KillSwitch Switch,
    [property: Id(1)] bool Created,
    [property: Id(2)] long Version);
