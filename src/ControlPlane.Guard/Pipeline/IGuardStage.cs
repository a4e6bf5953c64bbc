namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// One stage around the invocation (audit, the checks, the action's commit, shaping, in-flight registration,
/// downstream protection): it may end the request with a refusal, or run the rest through <paramref name="next"/>
/// and look at what comes back.
/// </summary>
public interface IGuardStage
{
    string Name { get; }

    ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken);
}

/// <summary>The stages after the current one, ending in the invocation itself. A struct: no delegate per call.</summary>
public readonly struct GuardNext
{
    private readonly GuardPipeline _pipeline;
    private readonly int _index;

    internal GuardNext(GuardPipeline pipeline, int index)
    {
        _pipeline = pipeline;
        _index = index;
    }

    public ValueTask<GuardOutcome> RunAsync(GuardCall call, CancellationToken cancellationToken) => _pipeline.RunFromAsync(_index, call, cancellationToken);
}
