using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Guard.Results;
using ControlPlane.Policy;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard.Pipeline.Stages;

/// <summary>What a read returns is redacted (and projected) before it leaves; an action's result and a refusal are not touched.</summary>
public sealed class ShapingStageTests
{
    private const string Email = "ada@example.com";

    private readonly PipelineKit _kit = new();
    private readonly ShapingStage _stage = new(new ResultShaper(new Redactor(), Options.Create(new ResultOptions())));

    private Task<GuardOutcome> RunAsync(GuardCall call) => new GuardPipeline([_stage]).RunAsync(call, CancellationToken.None).AsTask();

    private static CallToolResult WithEmail() => new()
    {
        StructuredContent = JsonDocument.Parse($$"""{"id":"c1","email":"{{Email}}"}""").RootElement.Clone(),
        Content = [new TextContentBlock { Text = $"Reach her at {Email}" }],
    };

    [Fact]
    public async Task A_tool_reads_result_is_redacted_in_structured_content_and_text()
    {
        var outcome = await RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), new RecordingOperation(WithEmail()).Operation));

        var shaped = Assert.IsType<CallToolResult>(outcome.Result);
        Assert.DoesNotContain(Email, shaped.StructuredContent!.Value.GetRawText());
        Assert.Equal("c1", shaped.StructuredContent.Value.GetProperty("id").GetString());
        var text = Assert.IsType<TextContentBlock>(Assert.Single(shaped.Content)).Text;
        Assert.DoesNotContain(Email, text);
        Assert.StartsWith("Reach her at [REDACTED", text);
    }

    [Fact]
    public async Task A_resources_text_is_redacted()
    {
        var read = new ReadResourceResult { Contents = [new TextResourceContents { Uri = "docs://staff", MimeType = "text/plain", Text = $"Contact: {Email}" }] };

        var outcome = await RunAsync(_kit.ServerCall(GuardRequestKind.ResourceRead, "docs://staff", new RecordingOperation(read).Operation));

        var contents = Assert.IsType<TextResourceContents>(Assert.Single(Assert.IsType<ReadResourceResult>(outcome.Result).Contents));
        Assert.DoesNotContain(Email, contents.Text);
        Assert.Equal(("docs://staff", "text/plain"), (contents.Uri, contents.MimeType));
    }

    [Fact]
    public async Task A_prompts_text_is_redacted()
    {
        var prompt = new GetPromptResult { Messages = [new PromptMessage { Role = Role.User, Content = new TextContentBlock { Text = $"Write to {Email}" } }] };

        var outcome = await RunAsync(_kit.ServerCall(GuardRequestKind.PromptGet, "follow_up", new RecordingOperation(prompt).Operation));

        var message = Assert.Single(Assert.IsType<GetPromptResult>(outcome.Result).Messages);
        Assert.DoesNotContain(Email, Assert.IsType<TextContentBlock>(message.Content).Text);
        Assert.Equal(Role.User, message.Role);
    }

    [Fact]
    public async Task An_actions_result_goes_back_as_it_ran()
    {
        var result = WithEmail();

        var outcome = await RunAsync(_kit.ToolCall(PipelineKit.Tool("refund", ToolClassification.Action), new RecordingOperation(result).Operation));

        Assert.Same(result, outcome.Result);
        Assert.Contains(Email, ((TextContentBlock)result.Content[0]).Text);
    }

    [Fact]
    public async Task A_refusal_passes_untouched()
    {
        var refusal = new Refusal(RefusalCodes.RateLimited, $"slow down, {Email}");
        var operation = new RecordingOperation(WithEmail());

        var outcome = await new GuardPipeline([_stage, new ScriptedStage("refuser", refusal)]).RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Same(refusal, outcome.Refusal);
        Assert.Null(outcome.Result);
        Assert.Equal(0, operation.Runs);
    }

    [Fact]
    public async Task A_projection_from_the_calls_pinned_state_applies_even_if_lifted_while_it_runs()
    {
        _kit.Apply(projections: [new ProjectionSetting(PipelineKit.Server, "lookup", ["/id"], null, null, true, "least data", "op", _kit.Time.GetUtcNow())]);
        // The operator lifts the projection while the call runs: the call is judged on the state it started with.
        var operation = new RecordingOperation(body: (_, _) =>
        {
            _kit.Apply();
            return ValueTask.FromResult<Result>(WithEmail());
        });

        var outcome = await RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation));

        var structured = Assert.IsType<CallToolResult>(outcome.Result).StructuredContent!.Value;
        Assert.Equal("""{"id":"c1"}""", structured.GetRawText());
    }
}
