using System.Diagnostics;
using ControlPlane.Refusals;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ModelContextProtocol;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// The checks, in order; the first refusal wins. A check that throws (a grain it needs could not answer: its silo
/// just died, storage is down) leaves the guard unable to decide, so nothing runs and the caller gets a refusal it can
/// retry instead of a bare error.
/// </summary>
public sealed partial class CheckStage : IGuardStage
{
    private readonly IGuardStep[] _steps;
    private readonly GuardMetrics? _metrics;
    private readonly ILogger _logger;

    public CheckStage(IEnumerable<IGuardStep> steps, GuardMetrics? metrics, ILogger<CheckStage>? logger = null)
    {
        _steps = [.. steps];
        _metrics = metrics;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    public string Name => "checks";

    public IReadOnlyList<string> StepNames => [.. _steps.Select(s => s.Name)];

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        Refusal? refusal;
        try
        {
            refusal = await EvaluateAsync(call, cancellationToken);
        }
        catch (Exception ex) when (ex is not McpProtocolException && !cancellationToken.IsCancellationRequested)
        {
            LogUndecided(_logger, call.Target.ServerId, call.Target.Name, ex.GetType().Name, ex.Message);
            refusal = new Refusal(RefusalCodes.GuardUnavailable, "The guard could not reach the state it needs to decide, so the request was not run. Retry shortly.")
            {
                RetryAfterSeconds = 2,
            };
        }

        // Tools are counted by name; the other kinds by method, never by URI (a caller could mint labels without end).
        _metrics?.Called(call.Target.ServerId, call.Tool is null ? call.Kind.WireName() : call.Target.Name, refusal?.Code, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return refusal is null ? await next.RunAsync(call, cancellationToken) : GuardOutcome.Refused(refusal);
    }

    public ValueTask<Refusal?> EvaluateAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (GuardTelemetry.Source.HasListeners()) return EvaluateTracedAsync(call, cancellationToken);
        return EvaluateUntracedAsync(call, cancellationToken);
    }

    private async ValueTask<Refusal?> EvaluateUntracedAsync(GuardCall call, CancellationToken cancellationToken)
    {
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "The guard could not decide a request of {Server}/{Target} and refused it ({ErrorType}: {Error}).")]
    private static partial void LogUndecided(ILogger logger, string server, string target, string errorType, string error);
}
