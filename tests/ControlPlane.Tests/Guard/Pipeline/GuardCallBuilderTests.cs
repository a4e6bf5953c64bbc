using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>What every stage relies on the call being: token split off, hashed once, state pinned, classified once.</summary>
public sealed class GuardCallBuilderTests
{
    private readonly PipelineKit _kit = new();

    [Fact]
    public void The_confirmation_token_is_split_off_without_touching_the_callers_arguments()
    {
        var sent = PipelineKit.Arguments("""{"customer_id":"c1","confirmation_token":"cpc_secret"}""");

        var call = _kit.ToolCall(PipelineKit.Tool("refund", ToolClassification.Action), arguments: sent);

        Assert.Equal("cpc_secret", call.ConfirmationToken);
        Assert.Equal(["customer_id"], call.Arguments!.Keys);
        Assert.Equal("c1", call.Arguments["customer_id"].GetString());
        // The caller's dictionary (the SDK's request) is never changed.
        Assert.Equal(["customer_id", "confirmation_token"], sent.Keys);
    }

    [Fact]
    public void A_token_that_is_not_a_string_is_still_split_off_and_reads_as_empty()
    {
        var call = _kit.ToolCall(PipelineKit.Tool("refund", ToolClassification.Action), arguments: PipelineKit.Arguments("""{"a":1,"confirmation_token":42}"""));

        Assert.Equal("", call.ConfirmationToken);
        Assert.Equal(["a"], call.Arguments!.Keys);
    }

    [Fact]
    public void Without_a_token_the_arguments_are_the_callers_own_and_no_token_is_reported()
    {
        var sent = PipelineKit.Arguments("""{"a":1}""");

        var call = _kit.ToolCall(PipelineKit.Tool("read"), arguments: sent);

        Assert.Null(call.ConfirmationToken);
        Assert.Same(sent, call.Arguments);
    }

    [Fact]
    public void The_hash_is_of_the_arguments_without_the_token()
    {
        var tool = PipelineKit.Tool("refund", ToolClassification.Action);
        var plain = _kit.ToolCall(tool, arguments: PipelineKit.Arguments("""{"amount":5}"""));
        var confirmed = _kit.ToolCall(tool, arguments: PipelineKit.Arguments("""{"amount":5,"confirmation_token":"cpc_one"}"""));
        var otherToken = _kit.ToolCall(tool, arguments: PipelineKit.Arguments("""{"amount":5,"confirmation_token":"cpc_two"}"""));
        var otherAmount = _kit.ToolCall(tool, arguments: PipelineKit.Arguments("""{"amount":6,"confirmation_token":"cpc_one"}"""));

        // A confirmation is bound to this hash: it must not depend on the token that confirms it.
        Assert.Equal(plain.ArgumentsHash, confirmed.ArgumentsHash);
        Assert.Equal(plain.ArgumentsHash, otherToken.ArgumentsHash);
        Assert.NotEqual(plain.ArgumentsHash, otherAmount.ArgumentsHash);
        Assert.Equal(PipelineKit.Hasher.Hash(PipelineKit.Arguments("""{"amount":5}""")), confirmed.ArgumentsHash);
    }

    [Fact]
    public void The_call_keeps_the_state_it_started_with_and_the_next_call_sees_the_new_one()
    {
        var tool = PipelineKit.Tool("read");
        var before = _kit.Cache.Current;
        var call = _kit.ToolCall(tool);

        var after = _kit.Apply(kills: [_kit.Kill(new KillTarget(KillScope.Tenant, TenantId: PipelineKit.Tenant))]);

        Assert.Same(before, call.State);
        Assert.Null(call.State.Kills.Match(call.Identity));
        var next = _kit.ToolCall(tool);
        Assert.Same(after, next.State);
        Assert.NotNull(next.State.Kills.Match(next.Identity));
    }

    [Fact]
    public void IsAction_follows_an_operator_override_in_the_pinned_policy()
    {
        var read = PipelineKit.Tool("export");
        var action = PipelineKit.Tool("reset", ToolClassification.Action);
        var unchanged = _kit.ToolCall(read);

        _kit.Apply(classifications:
        [
            new ToolClassificationOverride(PipelineKit.Server, "export", PipelineKit.Tenant, IsAction: true, "writes files", "op", _kit.Time.GetUtcNow()),
            new ToolClassificationOverride(PipelineKit.Server, "reset", null, IsAction: false, "harmless here", "op", _kit.Time.GetUtcNow()),
        ]);

        Assert.True(_kit.ToolCall(read).IsAction);
        Assert.False(_kit.ToolCall(read, agent: PipelineKit.Agent(tenant: "other")).IsAction, "the override is for tenant t only");
        Assert.False(_kit.ToolCall(action).IsAction);
        Assert.False(unchanged.IsAction, "a call made before the override keeps its classification");
    }

    [Theory]
    [InlineData(GuardRequestKind.ResourceRead)]
    [InlineData(GuardRequestKind.ResourceSubscribe)]
    [InlineData(GuardRequestKind.PromptGet)]
    [InlineData(GuardRequestKind.Completion)]
    public void Requests_other_than_tool_calls_are_never_actions_and_name_their_target(GuardRequestKind kind)
    {
        var operation = new RecordingOperation();
        var call = _kit.ServerCall(kind, "docs://handbook", operation.Operation, arguments: PipelineKit.Arguments("""{"q":"x","confirmation_token":"cpc_x"}"""));

        Assert.Equal(kind, call.Kind);
        Assert.False(call.IsAction);
        Assert.Null(call.Tool);
        Assert.Equal(PipelineKit.Server, call.Identity.ServerId);
        Assert.Equal("docs://handbook", call.Identity.ToolName);
        Assert.Equal(PipelineKit.Server + "/" + kind.WireName(), call.Target.Key);
        Assert.Equal(["q"], call.Arguments!.Keys);
        Assert.Same(operation.Operation.Target, call.Operation.Target);
    }

    [Fact]
    public void A_tool_call_names_its_caller_session_and_tool()
    {
        var call = _kit.ToolCall(PipelineKit.Tool("lookup"), agent: PipelineKit.Agent(tenant: "acme", agent: "bot"));

        Assert.Equal(GuardRequestKind.ToolCall, call.Kind);
        Assert.Equal(new ControlPlane.Guard.State.CallIdentity("acme", "bot", null, PipelineKit.Session, PipelineKit.Server, "lookup"), call.Identity);
        Assert.Equal("srv/lookup", call.Target.Key);
        Assert.Empty(call.DuplicateKeys);
    }
}
