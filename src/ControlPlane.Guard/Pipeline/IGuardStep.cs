namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// One check of the guard. Returns null to let the request go on, or the refusal that stops it. Checks run in the
/// order <see cref="GuardPipeline"/> lists; a new safety pattern is a new step there.
/// </summary>
public interface IGuardStep
{
    /// <summary>Short, stable name used in metrics, logs and to switch steps off in benchmarks.</summary>
    string Name { get; }

    ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken);
}
