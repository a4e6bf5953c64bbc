using ControlPlane.Guard.InFlight;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>A kill switch stops a request that is already running (or registering), and the caller is told KILLED.</summary>
public sealed class InFlightStageTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly PipelineKit _kit = new();
    private readonly InFlightCalls _inFlight;
    private readonly GuardPipeline _pipeline;

    public InFlightStageTests()
    {
        _inFlight = new InFlightCalls(_kit.Cache);
        _pipeline = new GuardPipeline([new InFlightStage(_inFlight)]);
    }

    public void Dispose() => _inFlight.Dispose();

    private KillSwitch TenantKill(string tenant = PipelineKit.Tenant) => _kit.Kill(new KillTarget(KillScope.Tenant, TenantId: tenant), "fraud investigation");

    [Fact]
    public async Task A_kill_switch_that_lands_while_the_operation_runs_cancels_it_and_the_caller_gets_KILLED()
    {
        var operation = new RecordingOperation { Hold = new() };
        var run = _pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("export"), operation.Operation), CancellationToken.None).AsTask();
        await operation.Started.Task.WaitAsync(Patience);
        Assert.Equal(1, _inFlight.Count);

        _kit.Apply(kills: [TenantKill()]);

        var outcome = await run.WaitAsync(Patience);
        Assert.True(operation.Token.IsCancellationRequested);
        Assert.Equal(GuardOutcomeKind.Failed, outcome.Kind);
        Assert.Equal("killed", outcome.FailureType);
        Assert.Equal(RefusalCodes.Killed, outcome.Refusal!.Code);
        Assert.Equal(("tenant", "fraud investigation"), (outcome.Refusal.Scope, outcome.Refusal.Reason));
        Assert.Equal(0, _inFlight.Count);
    }

    [Fact]
    public async Task A_resource_read_in_flight_is_killed_as_well()
    {
        var operation = new RecordingOperation { Hold = new() };
        var run = _pipeline.RunAsync(_kit.ServerCall(GuardRequestKind.ResourceRead, "docs://big", operation.Operation), CancellationToken.None).AsTask();
        await operation.Started.Task.WaitAsync(Patience);

        _kit.Apply(kills: [_kit.Kill(new KillTarget(KillScope.Server, ServerId: PipelineKit.Server))]);

        Assert.Equal(RefusalCodes.Killed, (await run.WaitAsync(Patience)).Refusal?.Code);
    }

    [Fact]
    public async Task A_switch_already_in_force_at_registration_refuses_without_running()
    {
        var operation = new RecordingOperation();
        // Built before the switch landed, so its pinned state (what the checks read) does not have it.
        var call = _kit.ToolCall(PipelineKit.Tool("export"), operation.Operation);
        _kit.Apply(kills: [TenantKill()]);

        var outcome = await _pipeline.RunAsync(call, CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Failed, outcome.Kind);
        Assert.Equal(RefusalCodes.Killed, outcome.Refusal!.Code);
        Assert.Equal(0, operation.Runs);
        Assert.Equal(0, _inFlight.Count);
    }

    [Fact]
    public async Task A_switch_for_someone_else_leaves_the_operation_running()
    {
        var operation = new RecordingOperation { Hold = new() };
        var run = _pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("export"), operation.Operation), CancellationToken.None).AsTask();
        await operation.Started.Task.WaitAsync(Patience);

        _kit.Apply(kills: [TenantKill("another-tenant")]);
        Assert.False(operation.Token.IsCancellationRequested);
        operation.Hold.SetResult();

        var outcome = await run.WaitAsync(Patience);
        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Same(operation.Result, outcome.Result);
    }

    [Fact]
    public async Task The_callers_own_cancellation_propagates_and_is_not_reported_as_a_kill()
    {
        using var cancelled = new CancellationTokenSource();
        var operation = new RecordingOperation { Hold = new() };
        var run = _pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("export"), operation.Operation), cancelled.Token).AsTask();
        await operation.Started.Task.WaitAsync(Patience);

        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Patience));
        Assert.Equal(0, _inFlight.Count);
    }
}
