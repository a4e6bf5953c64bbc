using System.Diagnostics.Metrics;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Limits;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using Polly.CircuitBreaker;

namespace ControlPlane.Guard;

/// <summary>
/// The guard's metrics (meter <c>ControlPlane</c>): calls by tool and decision, refusals by code, guard latency,
/// active kill switches, pending approvals, each upstream's circuit, and the audit writer's throughput, lag,
/// failures and backlog. Labels are ids and codes, never arguments or credentials. The dashboards under
/// dashboards/ are built on exactly these names (a test checks it).
/// </summary>
public sealed class GuardMetrics : IDisposable
{
    public const string MeterName = "ControlPlane";

    private readonly Meter _meter;
    private readonly Counter<long> _calls;
    private readonly Counter<long> _refusals;
    private readonly Histogram<double> _guardLatency;
    private readonly Histogram<double> _auditLag;
    private readonly AuditWriter _audit;
    private long _pendingApprovals = -1;

    public GuardMetrics(IMeterFactory meters, GuardStateCache guardState, AuditWriter audit, DownstreamProtection downstream, SessionRegistry sessions)
    {
        _audit = audit;
        _meter = meters.Create(MeterName);
        _calls = _meter.CreateCounter<long>("controlplane.calls", "{call}", "Tool calls by server, tool and decision.");
        _refusals = _meter.CreateCounter<long>("controlplane.refusals", "{call}", "Refused tool calls by refusal code.");
        _guardLatency = _meter.CreateHistogram<double>("controlplane.guard.duration", "ms", "Time the guard steps took per call, before the tool ran.");
        _auditLag = _meter.CreateHistogram<double>("controlplane.audit.batch_lag", "ms", "How long the oldest record of each audit batch waited from enqueue until durable.");
        _meter.CreateObservableGauge("controlplane.kill_switches.active", () => guardState.ActiveSwitches.Count, "{switch}", "Kill switches in force on this silo.");
        _meter.CreateObservableGauge("controlplane.guard_state.age", () => guardState.SinceConfirmed.TotalSeconds, "s", "Seconds since this silo confirmed its guard state.");
        _meter.CreateObservableGauge("controlplane.approvals.pending", PendingApprovals, "{approval}", "Approval requests waiting for a human, cluster-wide (every silo reports the same count).");
        _meter.CreateObservableGauge("controlplane.upstream.circuit_state", () => CircuitStates(downstream), "{state}", "Each tool server's circuit: 0 closed, 1 half-open, 2 open, 3 isolated.");
        _meter.CreateObservableCounter("controlplane.audit.written", () => audit.Written, "{record}", "Audit records made durable.");
        _meter.CreateObservableCounter("controlplane.audit.failed_batches", () => audit.FailedBatches, "{batch}", "Audit batches the store did not accept (audit write failures).");
        _meter.CreateObservableGauge("controlplane.audit.queued", () => audit.Queued, "{record}", "Audit records waiting to be written.");
        _meter.CreateObservableGauge("controlplane.sessions.live", () => sessions.OpenCount, "{session}", "MCP sessions with live state on this silo (idle ones are parked and resumed on demand).");
        _meter.CreateObservableCounter("controlplane.sessions.resumed", () => sessions.ResumedCount, "{session}", "MCP sessions resumed on this silo after being parked or opened on another silo.");
        audit.BatchCommitted += OnAuditBatch;
    }

    public void Called(string serverId, string toolName, string? refusalCode, double guardMs)
    {
        _calls.Add(1, new("server", serverId), new("tool", toolName), new("decision", refusalCode is null ? "allowed" : "refused"));
        if (refusalCode is not null) _refusals.Add(1, new KeyValuePair<string, object?>("code", refusalCode));
        _guardLatency.Record(guardMs);
    }

    /// <summary>Sets the cluster-wide count of pending approvals (sampled in the background: it takes grain calls).</summary>
    public void SetPendingApprovals(long count) => Interlocked.Exchange(ref _pendingApprovals, count);

    private IEnumerable<Measurement<long>> PendingApprovals()
    {
        var count = Interlocked.Read(ref _pendingApprovals);
        if (count >= 0) yield return new Measurement<long>(count);
    }

    private static IEnumerable<Measurement<int>> CircuitStates(DownstreamProtection downstream)
    {
        foreach (var (server, state) in downstream.Circuits)
        {
            var value = state switch
            {
                CircuitState.Closed => 0,
                CircuitState.HalfOpen => 1,
                CircuitState.Open => 2,
                _ => 3,
            };
            yield return new Measurement<int>(value, new KeyValuePair<string, object?>("server", server));
        }
    }

    private void OnAuditBatch(TimeSpan lag, int count) => _auditLag.Record(lag.TotalMilliseconds);

    public void Dispose()
    {
        _audit.BatchCommitted -= OnAuditBatch;
        _meter.Dispose();
    }
}
