using ControlPlane.Guard.Pipeline.Stages;
using ControlPlane.Guard.Pipeline.Steps;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// The one path of every guarded MCP request (tools/call, resources/read, resources/subscribe, prompts/get,
/// completion/complete). Its order is written here and nowhere else:
/// <code>
/// audit ─┬─ checks: kill → authentication → scope → mode → schema → rate limit → confirmation
///        ├─ action commit (intent record + confirmation consumed, both durable)
///        ├─ shaping (projection, PII redaction of what a read returns)
///        ├─ in flight (a kill switch cancels it) → downstream protection (Polly) → invoke
///        └─ the record of how it ended (refused, failed, or its result)
/// </code>
/// Checks are small steps that return a refusal or nothing; the other stages wrap the invocation. The first refusal
/// wins, and the audit stage, outermost, records every outcome.
/// </summary>
public sealed class GuardPipeline
{
    private readonly IGuardStage[] _stages;
    private readonly CheckStage _checks;

    public GuardPipeline(IEnumerable<IGuardStage> stages)
    {
        _stages = [.. stages];
        _checks = _stages.OfType<CheckStage>().SingleOrDefault() ?? new CheckStage([], null);
    }

    /// <summary>The checks' names in order (metrics, docs, tests).</summary>
    public IReadOnlyList<string> StepNames => _checks.StepNames;

    /// <summary>The stages' names in order.</summary>
    public IReadOnlyList<string> StageNames => [.. _stages.Select(s => s.Name)];

    /// <summary>The checks in the guard's order.</summary>
    public static IGuardStep[] StepsInOrder(IServiceProvider services) =>
    [
        services.GetRequiredService<KillSwitchStep>(),
        services.GetRequiredService<AuthenticationStep>(),
        services.GetRequiredService<ScopeStep>(),
        services.GetRequiredService<ModeStep>(),
        services.GetRequiredService<SchemaStep>(),
        services.GetRequiredService<RateLimitStep>(),
        services.GetRequiredService<ConfirmationStep>(),
    ];

    /// <summary>
    /// The pipeline the host runs: every stage in order. <paramref name="substitute"/> lets tests and benchmarks wrap or
    /// replace one check.
    /// </summary>
    public static GuardPipeline Create(IServiceProvider services, Func<IGuardStep, IGuardStep>? substitute = null) => new(
    [
        services.GetRequiredService<AuditStage>(),
        new CheckStage(StepsInOrder(services).Select(substitute ?? (step => step)), services.GetService<GuardMetrics>(), services.GetService<Microsoft.Extensions.Logging.ILogger<CheckStage>>()),
        services.GetRequiredService<ActionCommitStage>(),
        services.GetRequiredService<ShapingStage>(),
        services.GetRequiredService<InFlightStage>(),
        services.GetRequiredService<DownstreamStage>(),
    ]);

    /// <summary>Runs a request through every stage: its result, or the refusal the caller gets instead.</summary>
    public ValueTask<GuardOutcome> RunAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (!GuardTelemetry.Source.HasListeners()) return RunFromAsync(0, call, cancellationToken);
        return RunTracedAsync(call, cancellationToken);
    }

    /// <summary>The checks alone, without running anything: the refusal, or null if every check passed.</summary>
    public ValueTask<Refusal?> EvaluateAsync(GuardCall call, CancellationToken cancellationToken) => _checks.EvaluateAsync(call, cancellationToken);

    internal ValueTask<GuardOutcome> RunFromAsync(int index, GuardCall call, CancellationToken cancellationToken) =>
        index < _stages.Length
            ? _stages[index].RunAsync(call, new GuardNext(this, index + 1), cancellationToken)
            : InvokeAsync(call, cancellationToken);

    private static async ValueTask<GuardOutcome> InvokeAsync(GuardCall call, CancellationToken cancellationToken)
    {
        using (GuardTelemetry.Source.StartActivity("tool " + call.Target.ServerId))
        {
            return GuardOutcome.Ran(await call.Operation(call, cancellationToken));
        }
    }

    /// <summary>The same run inside the request's span, only while traces are collected.</summary>
    private async ValueTask<GuardOutcome> RunTracedAsync(GuardCall call, CancellationToken cancellationToken)
    {
        using var span = GuardTelemetry.Source.StartActivity(call.Kind == GuardRequestKind.ToolCall ? GuardTelemetry.CallSpan : "guard " + call.Kind.WireName());
        span?.SetTag(GuardTelemetry.TenantTag, call.Identity.TenantId);
        span?.SetTag(GuardTelemetry.AgentTag, call.Identity.AgentId);
        span?.SetTag(GuardTelemetry.ServerTag, call.Target.ServerId);
        span?.SetTag(GuardTelemetry.ToolTag, call.Target.Name);
        span?.SetTag(GuardTelemetry.KindTag, call.Kind.WireName());
        try
        {
            var outcome = await RunFromAsync(0, call, cancellationToken);
            span?.SetTag(GuardTelemetry.DecisionTag, outcome.Kind == GuardOutcomeKind.Refused ? "refused" : "allowed");
            if (outcome.Refusal is { } refusal) span?.SetTag(GuardTelemetry.CodeTag, refusal.Code);
            if (outcome.Kind == GuardOutcomeKind.Failed) span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, outcome.FailureType);
            if (outcome.Result is ModelContextProtocol.Protocol.CallToolResult result)
            {
                span?.SetTag(GuardTelemetry.OutcomeTag, result.IsError is true ? "error" : "success");
            }
            else if (outcome.Result is not null)
            {
                span?.SetTag(GuardTelemetry.OutcomeTag, "success");
            }

            return outcome;
        }
        catch (Exception ex)
        {
            span?.SetTag(GuardTelemetry.DecisionTag, "allowed");
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.GetType().Name);
            throw;
        }
    }
}
