using ControlPlane.Guard.Pipeline.Steps;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Runs the guard steps in order and stops at the first refusal. The order is the contract:
/// kill switches and guard freshness, then authentication, then (as they land) scope, mode, schema,
/// rate limits, confirmation and audit.
/// </summary>
public sealed class GuardPipeline
{
    private readonly IGuardStep[] _steps;

    public GuardPipeline(IEnumerable<IGuardStep> steps)
    {
        _steps = [.. steps];
    }

    public IReadOnlyList<string> StepNames => [.. _steps.Select(s => s.Name)];

    /// <summary>
    /// The registered steps in the guard's order, the one place that order is written down: what the host runs, and
    /// what tests and benchmarks wrap or replace one step of.
    /// </summary>
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

    public async ValueTask<Refusal?> EvaluateAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (GuardTelemetry.Source.HasListeners()) return await EvaluateTracedAsync(call, cancellationToken);
        foreach (var step in _steps)
        {
            var pending = step.CheckAsync(call, cancellationToken);
            var refusal = pending.IsCompletedSuccessfully ? pending.Result : await pending;
            if (refusal is not null) return refusal;
        }

        return null;
    }

    /// <summary>The same walk with a child span per step, only while traces are collected.</summary>
    private async ValueTask<Refusal?> EvaluateTracedAsync(GuardCall call, CancellationToken cancellationToken)
    {
        foreach (var step in _steps)
        {
            using var span = GuardTelemetry.Source.StartActivity("guard step " + step.Name);
            span?.SetTag(GuardTelemetry.StepTag, step.Name);
            var refusal = await step.CheckAsync(call, cancellationToken);
            if (refusal is not null)
            {
                span?.SetTag(GuardTelemetry.CodeTag, refusal.Code);
                return refusal;
            }
        }

        return null;
    }
}
