using ControlPlane.Guard.Limits;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>
/// A slow, saturated or failing server becomes UPSTREAM_UNAVAILABLE with a retry_after, for every kind of request it
/// serves: real Polly pipelines with small limits, on the test's clock.
/// </summary>
public sealed class DownstreamStageTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static readonly DownstreamLimits Small = new()
    {
        Timeout = TimeSpan.FromSeconds(3),
        MaxConcurrency = 1,
        QueueLimit = 0,
        FailureRatio = 0.5,
        MinimumThroughput = 2,
        SamplingDuration = TimeSpan.FromSeconds(30),
        BreakDuration = TimeSpan.FromSeconds(15),
    };

    private readonly PipelineKit _kit = new();
    private readonly GuardPipeline _pipeline;

    public DownstreamStageTests()
    {
        var downstream = new DownstreamProtection(Options.Create(new DownstreamOptions { Defaults = Small }), _kit.Time);
        _pipeline = new GuardPipeline([new DownstreamStage(downstream)]);
    }

    private Task<GuardOutcome> CallToolAsync(RecordingOperation operation, string? registeredFor = null) =>
        _pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup", registeredFor: registeredFor), operation.Operation), CancellationToken.None).AsTask();

    private Task<GuardOutcome> ReadAsync(RecordingOperation operation, string server = PipelineKit.Server) =>
        _pipeline.RunAsync(_kit.ServerCall(GuardRequestKind.ResourceRead, "docs://a", operation.Operation, server), CancellationToken.None).AsTask();

    private static void AssertUnavailable(GuardOutcome outcome, string why, int minRetry, int maxRetry)
    {
        Assert.Equal(GuardOutcomeKind.Failed, outcome.Kind);
        Assert.Equal("upstream_unavailable", outcome.FailureType);
        Assert.Equal(RefusalCodes.UpstreamUnavailable, outcome.Refusal!.Code);
        Assert.Contains(why, outcome.Refusal.Message);
        Assert.InRange(outcome.Refusal.RetryAfterSeconds ?? 0, minRetry, maxRetry);
    }

    /// <summary>Two failures in the window open the circuit (minimum throughput 2, failure ratio 0.5).</summary>
    private async Task OpenTheCircuitAsync(Func<RecordingOperation, Task<GuardOutcome>> call)
    {
        for (var i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<IOException>(() => call(RecordingOperation.Throwing(new IOException("connection reset"))));
        }
    }

    [Fact]
    public async Task A_healthy_server_answers_through_the_stage()
    {
        var operation = new RecordingOperation();

        var outcome = await CallToolAsync(operation);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Same(operation.Result, outcome.Result);
    }

    [Fact]
    public async Task An_operation_that_does_not_answer_in_time_becomes_UPSTREAM_UNAVAILABLE()
    {
        var operation = new RecordingOperation { Hold = new() };
        var run = CallToolAsync(operation);
        await operation.Started.Task.WaitAsync(Patience);

        _kit.Time.Advance(Small.Timeout);

        AssertUnavailable(await run.WaitAsync(Patience), "did not answer within 3 s", 1, 5);
        Assert.True(operation.Token.IsCancellationRequested, "the operation is told to stop");
    }

    [Fact]
    public async Task A_call_beyond_the_concurrency_limit_becomes_UPSTREAM_UNAVAILABLE_without_reaching_the_server()
    {
        var first = new RecordingOperation { Hold = new() };
        var running = CallToolAsync(first);
        await first.Started.Task.WaitAsync(Patience);
        var second = new RecordingOperation();

        AssertUnavailable(await ReadAsync(second), "too many calls", 1, 5);
        Assert.Equal(0, second.Runs);

        first.Hold.SetResult();
        Assert.Equal(GuardOutcomeKind.Ran, (await running.WaitAsync(Patience)).Kind);
    }

    [Fact]
    public async Task An_open_circuit_becomes_UPSTREAM_UNAVAILABLE_with_its_break_as_retry_after_and_the_server_is_left_alone()
    {
        await OpenTheCircuitAsync(op => CallToolAsync(op));
        var operation = new RecordingOperation();

        AssertUnavailable(await CallToolAsync(operation), "circuit is open", 1, 15);
        Assert.Equal(0, operation.Runs);
    }

    [Fact]
    public async Task After_its_break_the_circuit_lets_a_call_through_again()
    {
        await OpenTheCircuitAsync(op => CallToolAsync(op));

        _kit.Time.Advance(Small.BreakDuration);

        var operation = new RecordingOperation();
        Assert.Equal(GuardOutcomeKind.Ran, (await CallToolAsync(operation)).Kind);
        Assert.Equal(1, operation.Runs);
    }

    [Fact]
    public async Task A_resource_read_and_a_tool_call_of_the_same_server_share_its_circuit()
    {
        await OpenTheCircuitAsync(op => CallToolAsync(op));
        var read = new RecordingOperation();
        var otherServer = new RecordingOperation();

        AssertUnavailable(await ReadAsync(read), "circuit is open", 1, 15);
        Assert.Equal(0, read.Runs);
        Assert.Equal(GuardOutcomeKind.Ran, (await ReadAsync(otherServer, server: "srv-other")).Kind);
    }

    [Fact]
    public async Task Failing_reads_open_the_circuit_for_the_servers_tools_too()
    {
        await OpenTheCircuitAsync(op => ReadAsync(op));
        var tool = new RecordingOperation();

        AssertUnavailable(await CallToolAsync(tool), "circuit is open", 1, 15);
        Assert.Equal(0, tool.Runs);
    }

    [Fact]
    public async Task A_tenants_own_registration_of_a_server_has_a_circuit_of_its_own()
    {
        await OpenTheCircuitAsync(op => CallToolAsync(op, registeredFor: PipelineKit.Tenant));
        var global = new RecordingOperation();

        Assert.Equal(GuardOutcomeKind.Ran, (await CallToolAsync(global)).Kind);
        AssertUnavailable(await CallToolAsync(new RecordingOperation(), registeredFor: PipelineKit.Tenant), "circuit is open", 1, 15);
    }

    [Fact]
    public async Task A_cancelled_call_does_not_count_against_the_servers_health()
    {
        for (var i = 0; i < 3; i++)
        {
            using var cancelled = new CancellationTokenSource();
            var operation = new RecordingOperation { Hold = new() };
            var run = _pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), cancelled.Token).AsTask();
            await operation.Started.Task.WaitAsync(Patience);
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Patience));
        }

        Assert.Equal(GuardOutcomeKind.Ran, (await CallToolAsync(new RecordingOperation())).Kind);
    }
}
