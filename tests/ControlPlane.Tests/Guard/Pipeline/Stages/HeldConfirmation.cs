using ControlPlane.Guard.Pipeline;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>
/// A reserved confirmation token as the approval grain holds it: consumed once for good (a release after that changes
/// nothing), released back to "approved" otherwise. <see cref="Consumption"/> lets a test hold or fail the consumption.
/// </summary>
internal sealed class HeldConfirmation : IReservedConfirmation
{
    private int _consumeCalls;
    private int _releases;
    private volatile bool _consumed;

    /// <summary>What a consumption answers (true: durable); a faulted task is storage that failed. Completed true by default.</summary>
    public TaskCompletionSource<bool> Consumption { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when the stage asked for the consumption.</summary>
    public TaskCompletionSource ConsumeAsked { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int ConsumeCalls => Volatile.Read(ref _consumeCalls);

    public int Releases => Volatile.Read(ref _releases);

    /// <summary>True once a consumption was durable: the token can never be used again.</summary>
    public bool Consumed => _consumed;

    public static HeldConfirmation Answering(bool durable)
    {
        var held = new HeldConfirmation();
        held.Consumption.SetResult(durable);
        return held;
    }

    public static HeldConfirmation Failing(Exception exception)
    {
        var held = new HeldConfirmation();
        held.Consumption.SetException(exception);
        return held;
    }

    public async Task<bool> ConsumeAsync()
    {
        Interlocked.Increment(ref _consumeCalls);
        ConsumeAsked.TrySetResult();
        var durable = await Consumption.Task;
        if (durable) _consumed = true;
        return durable;
    }

    public Task<bool> RestoreAsync()
    {
        var was = _consumed;
        _consumed = false;
        return Task.FromResult(was);
    }

    public Task ReleaseAsync()
    {
        Interlocked.Increment(ref _releases);
        return Task.CompletedTask;
    }
}
