namespace ControlPlane.Guard.State;

/// <summary>How a silo keeps its copy of guard state fresh. Bound from <c>ControlPlane:GuardState</c>.</summary>
public sealed class GuardStateOptions
{
    public const string SectionName = "ControlPlane:GuardState";

    /// <summary>How often a silo asks the owner grain for the current version (the backstop behind pushes).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a silo may go without confirming its state before it stops trusting it and refuses
    /// action tools with GUARD_UNAVAILABLE.
    /// </summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(5);
}
