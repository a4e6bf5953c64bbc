using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ControlPlane.Guard;

namespace ControlPlane.Host.OperatorConsole.Live;

/// <summary>
/// This silo's call and refusal totals, read from the guard's own meter (the figures /metrics exports), so
/// the console's overview shows the same numbers without a second set of counters on the hot path.
/// </summary>
internal sealed class CallStatistics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly IMeterFactory _meters;
    private readonly ConcurrentDictionary<string, long> _refusalsByCode = new(StringComparer.Ordinal);
    private long _calls;

    public CallStatistics(IMeterFactory meters, GuardMetrics guardMetrics)
    {
        // Resolving GuardMetrics makes sure its meter exists before the listener starts looking.
        _ = guardMetrics;
        _meters = meters;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            // Only this host's meter: tests and benchmarks run several hosts in one process.
            if (instrument.Meter.Name == GuardMetrics.MeterName && ReferenceEquals(instrument.Meter.Scope, _meters)
                && instrument.Name is "controlplane.calls" or "controlplane.refusals")
            {
                listener.EnableMeasurementEvents(instrument, this);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (instrument, value, tags, state) => ((CallStatistics)state!).Record(instrument, value, tags));
        _listener.Start();
    }

    public long Calls => Interlocked.Read(ref _calls);

    public IReadOnlyDictionary<string, long> RefusalsByCode => _refusalsByCode;

    public long Refusals(string code) => _refusalsByCode.GetValueOrDefault(code);

    private void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (instrument.Name == "controlplane.calls")
        {
            Interlocked.Add(ref _calls, value);
            return;
        }

        foreach (var tag in tags)
        {
            if (tag is { Key: "code", Value: string code }) _refusalsByCode.AddOrUpdate(code, value, (_, total) => total + value);
        }
    }

    public void Dispose() => _listener.Dispose();
}
