using ControlPlane.Guard.Pipeline;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>A check whose answer the test decides (pass, refuse, throw); records each time it ran.</summary>
internal sealed class ScriptedStep(string name, Func<GuardCall, CancellationToken, ValueTask<Refusal?>>? check = null, List<string>? log = null) : IGuardStep
{
    private int _runs;

    public string Name => name;

    public int Runs => Volatile.Read(ref _runs);

    public static ScriptedStep Passing(string name, List<string>? log = null) => new(name, log: log);

    public static ScriptedStep Refusing(string name, Refusal refusal, List<string>? log = null) =>
        new(name, (_, _) => ValueTask.FromResult<Refusal?>(refusal), log);

    public static ScriptedStep Throwing(string name, Exception exception) =>
        new(name, (_, _) => ValueTask.FromException<Refusal?>(exception));

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        log?.Add("step " + name);
        return check?.Invoke(call, cancellationToken) ?? ValueTask.FromResult<Refusal?>(null);
    }
}
