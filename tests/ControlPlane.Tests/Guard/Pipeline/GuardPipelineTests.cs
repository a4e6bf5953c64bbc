using System.Reflection;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using ControlPlane.Refusals;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>The order of the guard, written once in <see cref="GuardPipeline.Create"/>, and how a refusal ends a run.</summary>
public sealed class GuardPipelineTests
{
    private readonly PipelineKit _kit = new();

    [Fact]
    public async Task The_host_pipeline_runs_its_stages_and_checks_in_the_documented_order()
    {
        await using var auditing = await TestAuditing.StartAsync(_kit.Time);
        await using var services = GuardServices(auditing);

        var pipeline = GuardPipeline.Create(services);

        Assert.Equal(["audit", "checks", "action-commit", "shaping", "in-flight", "downstream"], pipeline.StageNames);
        Assert.Equal(["kill", "authentication", "scope", "mode", "schema", "rate-limit", "confirmation"], pipeline.StepNames);
    }

    [Fact]
    public async Task A_substituted_check_takes_the_place_of_the_one_it_replaces()
    {
        await using var auditing = await TestAuditing.StartAsync(_kit.Time);
        await using var services = GuardServices(auditing);

        var pipeline = GuardPipeline.Create(services, step => step is RateLimitStep ? ScriptedStep.Passing("limits-off") : step);

        Assert.Equal(["kill", "authentication", "scope", "mode", "schema", "limits-off", "confirmation"], pipeline.StepNames);
    }

    [Fact]
    public async Task In_the_host_pipeline_the_first_refusing_check_wins_is_audited_and_nothing_after_it_runs()
    {
        await using var auditing = await TestAuditing.StartAsync(_kit.Time);
        await using var services = GuardServices(auditing);
        var log = new List<string>();
        var refusal = new Refusal(RefusalCodes.RateLimited, "slow down") { RetryAfterSeconds = 3 };
        var steps = new Dictionary<string, ScriptedStep>();
        var pipeline = GuardPipeline.Create(services, step => steps[step.Name] = step.Name switch
        {
            "rate-limit" => ScriptedStep.Refusing(step.Name, refusal, log),
            "confirmation" => ScriptedStep.Refusing(step.Name, new Refusal(RefusalCodes.RequiresConfirmation, "second refusal"), log),
            _ => ScriptedStep.Passing(step.Name, log),
        });
        var operation = new RecordingOperation();

        var outcome = await pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Refused, outcome.Kind);
        Assert.Same(refusal, outcome.Refusal);
        Assert.Equal(["step kill", "step authentication", "step scope", "step mode", "step schema", "step rate-limit"], log);
        Assert.Equal(0, steps["confirmation"].Runs);
        Assert.Equal(0, operation.Runs);
        var record = Assert.Single(auditing.Store.Durable);
        Assert.Equal(("refused", RefusalCodes.RateLimited, "refused"), (record.Decision, record.Code, record.Outcome));
    }

    [Fact]
    public async Task The_first_refusal_wins_and_no_later_stage_or_the_operation_runs()
    {
        var log = new List<string>();
        var outer = new ScriptedStage("outer", log: log);
        var refusal = new Refusal(RefusalCodes.ReadOnly, "read-only");
        var checks = new ControlPlane.Guard.Pipeline.Stages.CheckStage(
            [ScriptedStep.Passing("first", log), ScriptedStep.Refusing("second", refusal, log), ScriptedStep.Refusing("third", new Refusal(RefusalCodes.Killed, "later"), log)], null);
        var inner = new ScriptedStage("inner", log: log);
        var operation = new RecordingOperation();
        var pipeline = new GuardPipeline([outer, checks, inner]);

        var outcome = await pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Same(refusal, outcome.Refusal);
        Assert.Equal(["stage outer", "step first", "step second"], log);
        Assert.Equal(0, inner.Runs);
        Assert.Equal(0, operation.Runs);
        // The stages around the refusing one see it come back, as the audit stage does.
        Assert.Equal(GuardOutcomeKind.Refused, outer.Saw?.Kind);
    }

    [Fact]
    public async Task A_refusing_stage_ends_the_run_before_the_stages_after_it()
    {
        var refusal = new Refusal(RefusalCodes.GuardUnavailable, "no");
        var after = new ScriptedStage("after");
        var operation = new RecordingOperation();
        var pipeline = new GuardPipeline([new ScriptedStage("refuser", refusal), after]);

        var outcome = await pipeline.RunAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None);

        Assert.Same(refusal, outcome.Refusal);
        Assert.Equal(0, after.Runs);
        Assert.Equal(0, operation.Runs);
    }

    [Fact]
    public async Task When_every_stage_lets_it_through_the_operation_runs_once_with_the_call_and_its_answer_comes_back()
    {
        var log = new List<string>();
        var operation = new RecordingOperation();
        var pipeline = new GuardPipeline([new ScriptedStage("a", log: log), new ScriptedStage("b", log: log)]);
        var call = _kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation);

        var outcome = await pipeline.RunAsync(call, CancellationToken.None);

        Assert.Equal(GuardOutcomeKind.Ran, outcome.Kind);
        Assert.Same(operation.Result, outcome.Result);
        Assert.Equal(1, operation.Runs);
        Assert.Same(call, operation.Call);
        Assert.Equal(["stage a", "stage b"], log);
    }

    [Fact]
    public async Task Evaluate_runs_the_checks_alone_and_never_the_operation()
    {
        var refusal = new Refusal(RefusalCodes.ForbiddenScope, "no scope");
        var outer = new ScriptedStage("outer");
        var operation = new RecordingOperation();
        var allow = new GuardPipeline([outer, new ControlPlane.Guard.Pipeline.Stages.CheckStage([ScriptedStep.Passing("ok")], null)]);
        var refuse = new GuardPipeline([outer, new ControlPlane.Guard.Pipeline.Stages.CheckStage([ScriptedStep.Refusing("scope", refusal)], null)]);

        Assert.Null(await allow.EvaluateAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None));
        Assert.Same(refusal, await refuse.EvaluateAsync(_kit.ToolCall(PipelineKit.Tool("lookup"), operation.Operation), CancellationToken.None));
        Assert.Equal(0, outer.Runs);
        Assert.Equal(0, operation.Runs);
    }

    /// <summary>
    /// The guard's own registrations (AddControlPlaneGuard) over the test's audit; no silo, so a grain is never
    /// reachable (only constructors run here, and the checks that would need one are substituted).
    /// </summary>
    private static ServiceProvider GuardServices(TestAuditing auditing)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(auditing.Writer);
        services.AddSingleton(auditing.Auditor);
        services.AddSingleton(new Redactor());
        services.AddSingleton(PipelineKit.Hasher);
        services.AddSingleton<ISiloIdentity>(new TestAuditing.Silo());
        services.AddSingleton(DispatchProxy.Create<IGrainFactory, NoSilo>());
        services.AddControlPlaneGuard(new ConfigurationBuilder().Build());
        return services.BuildServiceProvider();
    }

    /// <summary>A grain factory for a host without a silo: any use fails loudly.</summary>
    private class NoSilo : DispatchProxy
    {
        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
            throw new InvalidOperationException($"No silo in this test: {targetMethod?.Name} was called.");
    }
}
