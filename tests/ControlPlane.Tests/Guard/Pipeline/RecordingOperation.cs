using ControlPlane.Guard.Pipeline;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>
/// The request itself, as a call's <see cref="GuardedOperation"/>: records that it ran, with which call and token,
/// and answers with <see cref="Result"/>; <see cref="Hold"/> makes it wait until the test releases it (or its token is cancelled).
/// </summary>
internal sealed class RecordingOperation
{
    private readonly Func<GuardCall, CancellationToken, ValueTask<Result>>? _body;
    private int _runs;

    public RecordingOperation(Result? result = null, Func<GuardCall, CancellationToken, ValueTask<Result>>? body = null)
    {
        Result = result ?? PipelineKit.Text("the tool's answer");
        _body = body;
    }

    public static RecordingOperation Throwing(Exception exception) => new(body: (_, _) => ValueTask.FromException<Result>(exception));

    public Result Result { get; }

    /// <summary>While set, a run waits for it (or for its cancellation token) before it answers.</summary>
    public TaskCompletionSource? Hold { get; set; }

    /// <summary>Completed as soon as a run starts.</summary>
    public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Runs => Volatile.Read(ref _runs);

    public GuardCall? Call { get; private set; }

    public CancellationToken Token { get; private set; }

    public GuardedOperation Operation => RunAsync;

    private async ValueTask<Result> RunAsync(GuardCall call, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        Call = call;
        Token = cancellationToken;
        Started.TrySetResult();
        if (Hold is { } hold) await hold.Task.WaitAsync(cancellationToken);
        return _body is null ? Result : await _body(call, cancellationToken);
    }
}
