using System.Diagnostics.Metrics;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.State;

namespace ControlPlane.Guard;

/// <summary>
/// The guard's metrics (meter <c>ControlPlane</c>): calls by tool and decision, refusals by code, guard latency,
/// active kill switches, and the audit writer's throughput, failures and backlog.
/// </summary>
public sealed class GuardMetrics : IDisposable
{
    public const string MeterName = "ControlPlane";

    private readonly Meter _meter;
    private readonly Counter<long> _calls;
    private readonly Counter<long> _refusals;
    private readonly Histogram<double> _guardLatency;

    public GuardMetrics(IMeterFactory meters, GuardStateCache guardState, AuditWriter audit)
    {
        _meter = meters.Create(MeterName);
        _calls = _meter.CreateCounter<long>("controlplane.calls", "{call}", "Tool calls by server, tool and decision.");
        _refusals = _meter.CreateCounter<long>("controlplane.refusals", "{call}", "Refused tool calls by refusal code.");
        _guardLatency = _meter.CreateHistogram<double>("controlplane.guard.duration", "ms", "Time the guard steps took per call, before the tool ran.");
        _meter.CreateObservableGauge("controlplane.kill_switches.active", () => guardState.ActiveSwitches.Count, "{switch}", "Kill switches in force on this silo.");
        _meter.CreateObservableGauge("controlplane.guard_state.age", () => guardState.SinceConfirmed.TotalSeconds, "s", "Seconds since this silo confirmed its guard state.");
        _meter.CreateObservableCounter("controlplane.audit.written", () => audit.Written, "{record}", "Audit records made durable.");
        _meter.CreateObservableCounter("controlplane.audit.failed_batches", () => audit.FailedBatches, "{batch}", "Audit batches the store did not accept.");
        _meter.CreateObservableGauge("controlplane.audit.queued", () => audit.Queued, "{record}", "Audit records waiting to be written.");
    }

    public void Called(string serverId, string toolName, string? refusalCode, double guardMs)
    {
        _calls.Add(1, new("server", serverId), new("tool", toolName), new("decision", refusalCode is null ? "allowed" : "refused"));
        if (refusalCode is not null) _refusals.Add(1, new KeyValuePair<string, object?>("code", refusalCode));
        _guardLatency.Record(guardMs);
    }

    public void Dispose() => _meter.Dispose();
}
