using ControlPlane.Guard.InFlight;
using ControlPlane.Guard.Pipeline.Steps;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// Registers the request among this silo's calls in flight, so a kill switch that lands while it runs cancels it; the
/// caller then gets KILLED, not a bare cancellation.
/// </summary>
public sealed class InFlightStage(InFlightCalls inFlight) : IGuardStage
{
    public string Name => "in-flight";

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        using var flight = inFlight.Begin(call.Identity, cancellationToken);
        if (flight.KilledBy is { } killedBefore) return GuardOutcome.Failed(KillSwitchStep.Killed(killedBefore), "killed");
        try
        {
            return await next.RunAsync(call, flight.Token);
        }
        catch (OperationCanceledException) when (flight.KilledBy is { } killedDuring)
        {
            return GuardOutcome.Failed(KillSwitchStep.Killed(killedDuring), "killed");
        }
    }
}
