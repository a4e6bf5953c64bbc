using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>Outermost: every request leaves a record, and what the store cannot keep decides what goes back.</summary>
public sealed class AuditStageTests : IAsyncLifetime
{
    private readonly PipelineKit _kit = new();
    private TestAuditing _auditing = null!;

    public async Task InitializeAsync() => _auditing = await TestAuditing.StartAsync(_kit.Time);

    public async Task DisposeAsync() => await _auditing.DisposeAsync();

    private RecordingAuditStore Store => _auditing.Store;

    private GuardPipeline Pipeline(ReadAuditPolicy policy = ReadAuditPolicy.FailClosed, IGuardStage? inner = null) =>
        new([new AuditStage(_auditing.Auditor, Options.Create(new AuditOptions { ReadPolicy = policy })), .. inner is null ? Array.Empty<IGuardStage>() : [inner]]);

    [Fact]
    public async Task A_read_is_recorded_with_its_result_and_returned()
    {
        var operation = new RecordingOperation();
        var call = _kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation);

        var outcome = await Pipeline().RunAsync(call, CancellationToken.None);

        Assert.Same(operation.Result, outcome.Result);
        var record = Assert.Single(Store.Durable);
        Assert.Equal(("allowed", "success", null), (record.Decision, record.Outcome, record.Code));
        Assert.Equal(call.Audit!.CallId, record.Id);
        Assert.NotNull(record.ResultHash);
        Assert.True(record.ResultSize > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_refusal_is_recorded_as_refused_and_returned_even_when_the_store_is_down(bool storeDown)
    {
        Store.Down = storeDown;
        var refusal = new Refusal(RefusalCodes.ForbiddenScope, "no scope");
        var operation = new RecordingOperation();

        var outcome = await Pipeline(inner: new ScriptedStage("checks", refusal)).RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Same(refusal, outcome.Refusal);
        Assert.Equal(0, operation.Runs);
        var record = Assert.Single(Store.Attempted);
        Assert.Equal(("refused", RefusalCodes.ForbiddenScope, "refused"), (record.Decision, record.Code, record.Outcome));
        Assert.Equal(storeDown ? 0 : 1, Store.Durable.Count);
    }

    [Theory]
    [InlineData(ReadAuditPolicy.FailClosed)]
    [InlineData(ReadAuditPolicy.FailOpen)]
    public async Task A_read_whose_record_fails_is_withheld_when_failing_closed_and_returned_when_failing_open(ReadAuditPolicy policy)
    {
        Store.Down = true;
        var operation = new RecordingOperation();

        var outcome = await Pipeline(policy).RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Equal(1, operation.Runs);
        if (policy == ReadAuditPolicy.FailClosed)
        {
            Assert.Equal(GuardOutcomeKind.Withheld, outcome.Kind);
            Assert.Null(outcome.Result);
            Assert.Equal(RefusalCodes.AuditUnavailable, outcome.Refusal!.Code);
            Assert.True(outcome.Refusal.RetryAfterSeconds > 0);
        }
        else
        {
            Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
            Assert.Same(operation.Result, outcome.Result);
        }
    }

    [Fact]
    public async Task A_resource_read_is_withheld_like_a_tool_read_when_its_record_fails()
    {
        Store.Down = true;
        var operation = new RecordingOperation(new ReadResourceResult { Contents = [new TextResourceContents { Uri = "docs://a", Text = "secret plans" }] });

        var outcome = await Pipeline().RunAsync(_kit.ServerCall(GuardRequestKind.ResourceRead, "docs://a", operation.Operation), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Withheld, outcome.Kind);
        Assert.Equal(RefusalCodes.AuditUnavailable, outcome.Refusal!.Code);
    }

    [Fact]
    public async Task An_actions_result_goes_back_even_when_its_record_fails_and_the_record_is_written_once_the_store_is_back()
    {
        var operation = new RecordingOperation();
        var call = _kit.ToolCall(PipelineKit.Tool("refund", ToolClassification.Action), operation.Operation);
        // The action ran (its intent was durable): only its result record meets a store that is down.
        Store.Refuses = e => e.Outcome == "success";

        var outcome = await Pipeline(ReadAuditPolicy.FailClosed).RunAsync(call, CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Same(operation.Result, outcome.Result);
        Assert.Empty(Store.Durable);

        Store.Down = false;
        var owed = Store.DurableAsync(e => e.Id == call.Audit!.CallId);
        _kit.Time.Advance(TimeSpan.FromSeconds(2));
        var record = await owed.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal("success", record.Outcome);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_exception_from_the_invocation_is_recorded_as_a_failure_and_rethrown(bool storeDown)
    {
        Store.Down = storeDown;
        var failure = new InvalidOperationException("the tool broke");
        var operation = RecordingOperation.Throwing(failure);

        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => Pipeline().RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None).AsTask());

        Assert.Same(failure, thrown);
        var record = Assert.Single(Store.Attempted);
        Assert.Equal(("allowed", "error", nameof(InvalidOperationException)), (record.Decision, record.Outcome, record.ErrorType));
    }

    [Fact]
    public async Task A_cancelled_request_is_recorded_as_cancelled()
    {
        using var cancelled = new CancellationTokenSource();
        var operation = new RecordingOperation { Hold = new() };
        var run = Pipeline().RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), cancelled.Token).AsTask();
        await operation.Started.Task;

        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Equal("cancelled", Assert.Single(Store.Durable).ErrorType);
    }

    [Fact]
    public async Task A_failure_after_the_call_started_is_recorded_with_its_type_and_code()
    {
        var killed = new Refusal(RefusalCodes.Killed, "stopped");

        var outcome = await Pipeline(inner: new FailingStage(GuardOutcome.Failed(killed, "killed"))).RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup")), CancellationToken.None);

        Assert.Same(killed, outcome.Refusal);
        var record = Assert.Single(Store.Durable);
        Assert.Equal(("error", "killed", RefusalCodes.Killed), (record.Outcome, record.ErrorType, record.Code));
    }

    [Theory]
    [InlineData(GuardRequestKind.ToolCall, "tools/call", "lookup")]
    [InlineData(GuardRequestKind.ResourceRead, "resources/read", "docs://handbook")]
    [InlineData(GuardRequestKind.PromptGet, "prompts/get", "summarise")]
    public async Task Records_carry_the_request_kind_and_the_target_name(GuardRequestKind kind, string wireName, string name)
    {
        var operation = new RecordingOperation(kind switch
        {
            GuardRequestKind.ToolCall => PipelineKit.Text("ok"),
            GuardRequestKind.ResourceRead => new ReadResourceResult { Contents = [new TextResourceContents { Uri = name, Text = "ok" }] },
            _ => new GetPromptResult { Messages = [new PromptMessage { Role = Role.User, Content = new TextContentBlock { Text = "ok" } }] },
        });
        var call = kind == GuardRequestKind.ToolCall
            ? _kit.ToolCall(PipelineKit.Tool(name), operation.Operation)
            : _kit.ServerCall(kind, name, operation.Operation);

        await Pipeline().RunAsync(call, CancellationToken.None);

        var record = Assert.Single(Store.Durable);
        Assert.Equal((wireName, PipelineKit.Server, name), (record.Kind, record.Server, record.Tool));
        Assert.Equal((PipelineKit.Tenant, "agent-1", PipelineKit.Session, "tok1"), (record.TenantId, record.AgentId, record.SessionId, record.TokenId));
        Assert.Equal("silo-test", record.Silo);
    }

    [Fact]
    public async Task The_record_holds_the_redacted_arguments_and_their_hash_and_never_the_confirmation_token()
    {
        var call = _kit.ToolCall(PipelineKit.Tool("lookup"), new RecordingOperation().Operation,
            PipelineKit.Arguments("""{"email":"ada@example.com","confirmation_token":"cpc_secret"}"""));

        await Pipeline().RunAsync(call, CancellationToken.None);

        var record = Assert.Single(Store.Durable);
        Assert.Equal(call.ArgumentsHash, record.ArgumentsHash);
        Assert.DoesNotContain("ada@example.com", record.Arguments);
        Assert.Contains("\"email\"", record.Arguments);
        Assert.DoesNotContain("cpc_secret", record.Arguments);
        Assert.DoesNotContain("confirmation_token", record.Arguments);
    }

    [Fact]
    public async Task The_audit_in_progress_is_on_the_call_for_the_stages_inside()
    {
        CallAudit? seen = null;
        var operation = new RecordingOperation(body: (call, _) =>
        {
            seen = call.Audit;
            return ValueTask.FromResult<Result>(PipelineKit.Text("ok"));
        });
        var call = _kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation);

        await Pipeline().RunAsync(call, CancellationToken.None);

        Assert.NotNull(seen);
        Assert.Same(call.Audit, seen);
        Assert.Equal(seen.CallId, Assert.Single(Store.Durable).Id);
    }

    [Fact]
    public async Task An_action_killed_after_its_intent_keeps_its_ending_until_the_store_takes_it()
    {
        var call = _kit.ToolCall(PipelineKit.Tool("refund", ToolClassification.Action), new RecordingOperation().Operation);
        var killed = GuardOutcome.Failed(new Refusal(RefusalCodes.Killed, "stopped"), "killed");
        // The intent is durable; then the store goes down before the ending is recorded.
        var pipeline = new GuardPipeline([
            new AuditStage(_auditing.Auditor, Options.Create(new AuditOptions())),
            new ActionCommitStage(),
            new IntentThenOutageStage(Store, killed),
        ]);

        var outcome = await pipeline.RunAsync(call, CancellationToken.None);

        Assert.Equal(RefusalCodes.Killed, outcome.Refusal?.Code);
        Assert.DoesNotContain(Store.Durable, e => e.Id == call.Audit!.CallId);

        Store.Down = false;
        var owed = Store.DurableAsync(e => e.Id == call.Audit!.CallId);
        _kit.Time.Advance(TimeSpan.FromSeconds(2));
        var record = await owed.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(("error", "killed", RefusalCodes.Killed), (record.Outcome, record.ErrorType, record.Code));
    }

    /// <summary>Takes the store down after the intent was written, then ends the action as a kill would.</summary>
    private sealed class IntentThenOutageStage(RecordingAuditStore store, GuardOutcome outcome) : IGuardStage
    {
        public string Name => "outage";

        public ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
        {
            Assert.True(call.Audit!.IntentRecorded);
            store.Down = true;
            return ValueTask.FromResult(outcome);
        }
    }

    /// <summary>Ends the request as the in-flight or downstream stage does when it stopped it.</summary>
    private sealed class FailingStage(GuardOutcome outcome) : IGuardStage
    {
        public string Name => "failing";

        public ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken) => ValueTask.FromResult(outcome);
    }
}
