using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Refusals;
using ModelContextProtocol;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>The checks in order: the first refusal wins, and a check that cannot decide refuses rather than lets through.</summary>
public sealed class CheckStageTests
{
    private readonly PipelineKit _kit = new();
    private readonly RecordingOperation _operation = new();

    private Task<GuardOutcome> RunAsync(CancellationToken cancellationToken, params IGuardStep[] steps) =>
        new GuardPipeline([new CheckStage(steps, null)]).RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), _operation.Operation), cancellationToken).AsTask();

    [Fact]
    public async Task When_every_check_passes_the_operation_runs()
    {
        var outcome = await RunAsync(CancellationToken.None, ScriptedStep.Passing("a"), ScriptedStep.Passing("b"));

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Equal(1, _operation.Runs);
    }

    [Fact]
    public async Task The_first_refusal_wins_and_the_checks_after_it_do_not_run()
    {
        var refusal = new Refusal(RefusalCodes.ForbiddenScope, "no scope");
        var later = ScriptedStep.Refusing("later", new Refusal(RefusalCodes.RateLimited, "later"));

        var outcome = await RunAsync(CancellationToken.None, ScriptedStep.Passing("a"), ScriptedStep.Refusing("scope", refusal), later);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Same(refusal, outcome.Refusal);
        Assert.Equal(0, later.Runs);
        Assert.Equal(0, _operation.Runs);
    }

    [Theory]
    [InlineData(typeof(Orleans.Runtime.SiloUnavailableException))]
    [InlineData(typeof(TimeoutException))]
    [InlineData(typeof(IOException))]
    // A cancellation the caller did not ask for (a grain call's own timeout) is a check that could not decide, too.
    [InlineData(typeof(TaskCanceledException))]
    public async Task A_check_that_throws_refuses_with_GUARD_UNAVAILABLE_and_nothing_runs(Type exceptionType)
    {
        var later = ScriptedStep.Passing("later");

        var outcome = await RunAsync(CancellationToken.None, ScriptedStep.Passing("a"), ScriptedStep.Throwing("broken", (Exception)Activator.CreateInstance(exceptionType)!), later);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Equal(RefusalCodes.GuardUnavailable, outcome.Refusal!.Code);
        Assert.True(outcome.Refusal.RetryAfterSeconds > 0);
        Assert.Equal(0, later.Runs);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task A_check_that_throws_synchronously_is_undecided_too()
    {
        var outcome = await RunAsync(CancellationToken.None, new ScriptedStep("sync", (_, _) => throw new InvalidOperationException("state missing")));

        Assert.Equal(RefusalCodes.GuardUnavailable, outcome.Refusal?.Code);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task The_callers_cancellation_propagates_and_nothing_runs()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(cancelled.Token,
            new ScriptedStep("waits", (_, ct) => ValueTask.FromException<Refusal?>(new OperationCanceledException(ct)))));

        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task A_protocol_error_from_a_check_goes_back_to_the_client_as_it_is()
    {
        var error = new McpProtocolException("bad request", McpErrorCode.InvalidParams);

        var thrown = await Assert.ThrowsAsync<McpProtocolException>(() => RunAsync(CancellationToken.None, ScriptedStep.Throwing("protocol", error)));

        Assert.Same(error, thrown);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task Every_check_sees_the_same_call()
    {
        var seen = new List<GuardCall>();
        ValueTask<Refusal?> Record(GuardCall call, CancellationToken _)
        {
            seen.Add(call);
            return ValueTask.FromResult<Refusal?>(null);
        }

        await RunAsync(CancellationToken.None, new ScriptedStep("a", Record), new ScriptedStep("b", Record));

        Assert.Equal(2, seen.Count);
        Assert.All(seen, call => Assert.Same(_operation.Call, call));
    }
}
