using ModelContextProtocol;

namespace ControlPlane.Upstreams;

/// <summary>
/// The SDK handles each incoming message on its own task, so the upstream's progress notifications reach us
/// in any order, and the last one can race its result. Forwarding is one at a time and only forwards: MCP
/// requires progress to increase, so a value overtaken by a later one is stale and is dropped rather than sent
/// backwards. Before the result goes back, a short grace lets a late notification through.
/// </summary>
internal sealed class ProgressForwarding
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private double _last = double.NegativeInfinity;
    public int Pending;

    public async Task ForwardInOrderAsync(ProgressNotificationValue value, Func<ProgressNotificationValue, Task> send, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (value.Progress <= _last) return;
            _last = value.Progress;
            await send(value);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task DrainAsync(TimeProvider time)
    {
        await Task.Delay(TimeSpan.FromMilliseconds(50), time);
        var deadline = time.GetTimestamp() + time.TimestampFrequency;
        while (Volatile.Read(ref Pending) > 0 && time.GetTimestamp() < deadline) await Task.Delay(TimeSpan.FromMilliseconds(5), time);
    }
}
