using ControlPlane.Guard.State;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// Kill switches at every level, read from the guard state the call pinned. If this silo's copy could not be
/// confirmed recently, actions (by their effective classification) are refused (fail closed); reads go on against
/// the last known state.
/// </summary>
public sealed class KillSwitchStep(GuardStateCache guardState) : IGuardStep
{
    public string Name => "kill";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (call.IsAction && !guardState.IsFresh)
        {
            return ValueTask.FromResult<Refusal?>(new Refusal(
                RefusalCodes.GuardUnavailable,
                $"This silo has not confirmed its kill-switch state for {guardState.SinceConfirmed.TotalSeconds:0.#} s, so it will not run action tools. " +
                "Retry shortly; if it persists, tell the operators that the control plane is degraded.")
            {
                RetryAfterSeconds = 5,
            });
        }

        var killSwitch = call.State.Kills.Match(call.Identity);
        return ValueTask.FromResult(killSwitch is null ? null : Killed(killSwitch));
    }

    public static Refusal Killed(KillSwitch killSwitch) => new(
        RefusalCodes.Killed,
        $"An operator stopped calls at the {killSwitch.Target.Scope.ToWireName()} level: {killSwitch.Reason}. " +
        "Do not retry; tell the user that this capability is switched off and why.")
    {
        Scope = killSwitch.Target.Scope.ToWireName(),
        Reason = killSwitch.Reason,
    };
}
