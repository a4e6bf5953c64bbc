using ControlPlane.Guard.Results;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// Read results are projected and redacted before they leave, and before the audit stage hashes them, so the audit's
/// result hash is of exactly what the agent received. An action's result goes back as it ran.
/// </summary>
public sealed class ShapingStage(ResultShaper shaper) : IGuardStage
{
    public string Name => "shaping";

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        var outcome = await next.RunAsync(call, cancellationToken);
        if (call.IsAction || outcome.Kind != GuardOutcomeKind.Ran) return outcome;
        var projection = call.Tool is { } tool ? call.State.Policy.Projection(tool) : null;
        return GuardOutcome.Ran(shaper.Shape(outcome.Result!, projection));
    }
}
