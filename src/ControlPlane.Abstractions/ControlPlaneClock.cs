namespace ControlPlane;

/// <summary>
/// The clock for agent-token expiry, confirmations and approvals, a keyed service so tests can move it (expiry without
/// sleeps) without also moving the clock Orleans itself runs on.
/// </summary>
public static class ControlPlaneClock
{
    public const string ServiceKey = "controlplane-clock";
}
