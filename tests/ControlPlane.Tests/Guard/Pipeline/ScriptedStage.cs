using ControlPlane.Guard.Pipeline;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>A stage that either refuses or runs the rest and remembers the outcome it saw; logs when it runs.</summary>
internal sealed class ScriptedStage(string name, Refusal? refusal = null, List<string>? log = null) : IGuardStage
{
    private int _runs;

    public string Name => name;

    public int Runs => Volatile.Read(ref _runs);

    /// <summary>The outcome of the stages after this one, once they returned.</summary>
    public GuardOutcome? Saw { get; private set; }

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        log?.Add("stage " + name);
        if (refusal is not null) return GuardOutcome.Refused(refusal);
        var outcome = await next.RunAsync(call, cancellationToken);
        Saw = outcome;
        return outcome;
    }
}
