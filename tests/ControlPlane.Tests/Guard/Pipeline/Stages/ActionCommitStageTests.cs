using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Policy;
using ControlPlane.Refusals;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>
/// An action runs only once its intent record and its confirmation's consumption are both durable; a read passes
/// straight through. The audit in progress is begun here by hand, as the audit stage would.
/// </summary>
public sealed class ActionCommitStageTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly PipelineKit _kit = new();
    private readonly GuardPipeline _pipeline = new([new ActionCommitStage()]);
    private readonly RecordingOperation _operation = new();
    private TestAuditing _auditing = null!;

    public async Task InitializeAsync() => _auditing = await TestAuditing.StartAsync(_kit.Time);

    public async Task DisposeAsync() => await _auditing.DisposeAsync();

    private RecordingAuditStore Store => _auditing.Store;

    private GuardCall Action(HeldConfirmation? confirmation, ToolDescriptor? tool = null)
    {
        var call = _kit.ToolCall(tool ?? PipelineKit.Tool("refund", ToolClassification.Action), _operation.Operation);
        call.Audit = _auditing.Auditor.Begin(call);
        call.ConfirmationId = confirmation is null ? null : "appr-1";
        call.ReservedConfirmation = confirmation;
        return call;
    }

    private static bool IsIntent(ControlPlane.Audit.Model.AuditEntry entry) => entry.Kind == "tools/call:intent";

    [Fact]
    public async Task A_confirmed_action_runs_after_its_intent_naming_the_approval_is_durable_and_its_token_consumed()
    {
        var confirmation = HeldConfirmation.Answering(durable: true);
        var call = Action(confirmation);

        var outcome = await _pipeline.RunAsync(call, CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Equal(1, _operation.Runs);
        Assert.True(confirmation.Consumed);
        var intent = Assert.Single(Store.Durable);
        Assert.Equal(("tools/call:intent", call.Audit!.CallId + ":intent", "pending", "appr-1"), (intent.Kind, intent.Id, intent.Outcome, intent.ConfirmationId));
    }

    [Fact]
    public async Task The_action_waits_for_its_intent_record_to_be_durable()
    {
        var intentHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Store.Hold = entry => IsIntent(entry) ? intentHeld.Task : Task.CompletedTask;

        var run = _pipeline.RunAsync(Action(HeldConfirmation.Answering(durable: true)), CancellationToken.None).AsTask();
        await Store.ReachedAsync(IsIntent).WaitAsync(Patience);

        Assert.False(run.IsCompleted);
        Assert.Equal(0, _operation.Runs);
        intentHeld.SetResult();
        Assert.Equal(GuardOutcomeKind.Ran, (await run.WaitAsync(Patience)).Kind);
        Assert.Equal(1, _operation.Runs);
    }

    [Fact]
    public async Task The_action_waits_for_its_confirmation_to_be_consumed()
    {
        var confirmation = new HeldConfirmation();

        var run = _pipeline.RunAsync(Action(confirmation), CancellationToken.None).AsTask();
        await confirmation.ConsumeAsked.Task.WaitAsync(Patience);
        await Store.DurableAsync(IsIntent).WaitAsync(Patience);

        Assert.False(run.IsCompleted);
        Assert.Equal(0, _operation.Runs);
        confirmation.Consumption.SetResult(true);
        Assert.Equal(GuardOutcomeKind.Ran, (await run.WaitAsync(Patience)).Kind);
        Assert.Equal(1, _operation.Runs);
    }

    [Fact]
    public async Task A_consumption_that_fails_refuses_with_GUARD_UNAVAILABLE_and_gives_the_token_back()
    {
        var confirmation = HeldConfirmation.Failing(new IOException("approval storage is down (test)"));

        var outcome = await _pipeline.RunAsync(Action(confirmation), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Equal(RefusalCodes.GuardUnavailable, outcome.Refusal!.Code);
        Assert.True(outcome.Refusal.RetryAfterSeconds > 0);
        Assert.Equal(1, confirmation.Releases);
        Assert.False(confirmation.Consumed);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task A_reservation_no_longer_held_refuses_with_GUARD_UNAVAILABLE()
    {
        var outcome = await _pipeline.RunAsync(Action(HeldConfirmation.Answering(durable: false)), CancellationToken.None);

        Assert.Equal(RefusalCodes.GuardUnavailable, outcome.Refusal?.Code);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task An_intent_that_cannot_be_made_durable_withholds_the_action_with_AUDIT_UNAVAILABLE()
    {
        Store.Down = true;

        var outcome = await _pipeline.RunAsync(Action(HeldConfirmation.Answering(durable: true)), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Withheld, outcome.Kind);
        Assert.Equal(RefusalCodes.AuditUnavailable, outcome.Refusal!.Code);
        Assert.True(outcome.Refusal.RetryAfterSeconds > 0);
        Assert.Equal(0, _operation.Runs);
    }

    [Fact]
    public async Task An_intent_that_cannot_be_made_durable_leaves_the_confirmation_token_usable_for_the_retry()
    {
        // AUDIT_UNAVAILABLE tells the agent to retry, and the action did not run; the human's approval must still be
        // good for that retry. (The consumption also has no audit record of its own: the intent is what names it.)
        Store.Down = true;
        var confirmation = HeldConfirmation.Answering(durable: true);

        var outcome = await _pipeline.RunAsync(Action(confirmation), CancellationToken.None);

        Assert.Equal(RefusalCodes.AuditUnavailable, outcome.Refusal?.Code);
        Assert.False(confirmation.Consumed, "the confirmation token was used up by an action that never ran");
    }

    [Fact]
    public async Task An_unconfirmed_action_still_writes_its_intent_first()
    {
        var outcome = await _pipeline.RunAsync(Action(confirmation: null), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Null(Assert.Single(Store.Durable, IsIntent).ConfirmationId);
    }

    [Fact]
    public async Task A_read_passes_through_without_an_intent_record()
    {
        var outcome = await _pipeline.RunAsync(Action(confirmation: null, PipelineKit.Tool("lookup")), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Equal(1, _operation.Runs);
        Assert.Empty(Store.Attempted);
    }

    [Fact]
    public async Task A_read_runs_even_when_the_store_is_down_since_only_an_intent_is_written_here()
    {
        Store.Down = true;

        var outcome = await _pipeline.RunAsync(Action(confirmation: null, PipelineKit.Tool("lookup")), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Equal(1, _operation.Runs);
    }

    [Fact]
    public async Task A_read_tool_an_operator_classified_as_an_action_is_committed_as_one()
    {
        _kit.Apply(classifications: [new ToolClassificationOverride(PipelineKit.Server, "export", null, IsAction: true, "writes files", "op", _kit.Time.GetUtcNow())]);
        Store.Down = true;

        var outcome = await _pipeline.RunAsync(Action(confirmation: null, PipelineKit.Tool("export")), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Withheld, outcome.Kind);
        Assert.Equal(0, _operation.Runs);
        Assert.Single(Store.Attempted, IsIntent);
    }
}
