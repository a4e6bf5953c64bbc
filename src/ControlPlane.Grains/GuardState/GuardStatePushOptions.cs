namespace ControlPlane.Grains.GuardState;

/// <summary>How the guard state owner pushes a change to the silos. Bound from <c>ControlPlane:GuardState</c>.</summary>
public sealed class GuardStatePushOptions
{
    public const string SectionName = "ControlPlane:GuardState";

    /// <summary>
    /// How long the owner waits for one silo to take a change before it answers the operator without it. A live silo
    /// takes a push in milliseconds; one that does not (dead but not yet declared so, or cut off) catches up by its
    /// version poll, or stops trusting its state after <c>StaleAfter</c> and refuses action tools (fail closed).
    /// </summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromMilliseconds(500);
}
