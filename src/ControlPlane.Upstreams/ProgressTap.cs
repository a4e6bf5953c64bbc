using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Upstreams;

/// <summary>
/// Hands an upstream's progress notifications to the call they belong to in the order the upstream sent them.
/// </summary>
/// <remarks>
/// The SDK handles every incoming message on its own task, so notification handlers run in any order and the last
/// notifications can lose the race with the result: on a busy machine a call's progress arrived reordered and cut
/// short. The tap sits between the transport and the SDK and reads messages in arrival order: a progress notification
/// is queued to its call's <see cref="ProgressRelay"/> before the SDK sees the next message, so when a call's result
/// reaches the caller, every notification sent before it is already queued.
/// </remarks>
internal sealed class ProgressTap
{
    private readonly ConcurrentDictionary<string, ProgressRelay> _relays = new(StringComparer.Ordinal);

    /// <summary>The transport with this tap between it and the SDK.</summary>
    public IClientTransport Wrap(IClientTransport transport) => new TappedClientTransport(transport, this);

    /// <summary>A relay for one call's progress token; disposing it stops listening for that token.</summary>
    public ProgressRelay Open(string token, Func<ProgressNotificationValue, Task> send)
    {
        ProgressRelay? relay = null;
        relay = new ProgressRelay(send, () => _relays.TryRemove(new KeyValuePair<string, ProgressRelay>(token, relay!)));
        if (_relays.TryAdd(token, relay)) return relay;
        relay.Stop();
        throw new InvalidOperationException("A progress token is already being relayed.");
    }

    private void Observe(JsonRpcNotification notification)
    {
        if (_relays.IsEmpty || notification.Params is null) return;
        ProgressNotificationParams? progress;
        try
        {
            progress = notification.Params.Deserialize(McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(ProgressNotificationParams))) as ProgressNotificationParams;
        }
        catch (Exception)
        {
            // A malformed notification is the upstream's problem: it relays nothing, and must not end the connection.
            return;
        }

        if (progress?.ProgressToken.ToString() is { } token && _relays.TryGetValue(token, out var relay)) relay.Enqueue(progress.Progress);
    }

    private sealed class TappedClientTransport(IClientTransport inner, ProgressTap tap) : IClientTransport
    {
        public string Name => inner.Name;

        public async Task<ITransport> ConnectAsync(CancellationToken cancellationToken = default) =>
            new TappedTransport(await inner.ConnectAsync(cancellationToken).ConfigureAwait(false), tap);
    }

    private sealed class TappedTransport : ITransport
    {
        private readonly ITransport _inner;
        private readonly ProgressTap _tap;
        private readonly Channel<JsonRpcMessage> _messages = Channel.CreateUnbounded<JsonRpcMessage>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public TappedTransport(ITransport inner, ProgressTap tap)
        {
            _inner = inner;
            _tap = tap;
            _ = PumpAsync();
        }

        public string? SessionId => _inner.SessionId;

        public ChannelReader<JsonRpcMessage> MessageReader => _messages.Reader;

        public Task SendMessageAsync(JsonRpcMessage message, CancellationToken cancellationToken = default) => _inner.SendMessageAsync(message, cancellationToken);

        // The pump ends on its own once the inner transport's reader completes, which disposing it brings about.
        public ValueTask DisposeAsync() => _inner.DisposeAsync();

        private async Task PumpAsync()
        {
            await Task.Yield();
            try
            {
                // Ends when the inner transport closes; its reason (an exception) is passed on to the SDK as it is.
                await foreach (var message in _inner.MessageReader.ReadAllAsync().ConfigureAwait(false))
                {
                    if (message is JsonRpcNotification { Method: NotificationMethods.ProgressNotification } notification) _tap.Observe(notification);
                    _messages.Writer.TryWrite(message);
                }

                _messages.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _messages.Writer.TryComplete(ex);
            }
        }
    }
}

/// <summary>
/// One call's progress, forwarded to its caller one notification at a time, in the order the upstream sent them, and
/// only forwards: MCP requires progress to increase, so a value that does not is dropped rather than sent backwards.
/// </summary>
internal sealed class ProgressRelay : IAsyncDisposable
{
    // Bounded so an upstream flooding progress at a caller that does not read cannot grow it without limit: beyond
    // 1,024 unsent notifications the oldest go, never the newest.
    private readonly Channel<ProgressNotificationValue> _queue = Channel.CreateBounded<ProgressNotificationValue>(
        new BoundedChannelOptions(1024) { SingleReader = true, FullMode = BoundedChannelFullMode.DropOldest });
    private volatile bool _stopped;
    private readonly Func<ProgressNotificationValue, Task> _send;
    private readonly Action _close;
    private readonly Task _forwarding;

    internal ProgressRelay(Func<ProgressNotificationValue, Task> send, Action close)
    {
        _send = send;
        _close = close;
        _forwarding = ForwardAsync();
    }

    internal void Enqueue(ProgressNotificationValue value) => _queue.Writer.TryWrite(value);

    /// <summary>
    /// After the call's result arrived: forwards what the upstream sent before it (already queued, see
    /// <see cref="ProgressTap"/>), waiting at most <paramref name="bound"/> for a slow caller before the result goes.
    /// Whatever is not sent by then is dropped: MCP allows no progress after the result.
    /// </summary>
    public async Task FlushAsync(TimeSpan bound, TimeProvider time)
    {
        _close();
        _queue.Writer.TryComplete();
        try
        {
            await _forwarding.WaitAsync(bound, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The caller is not reading; the result must not wait for it any longer.
            Stop();
        }
    }

    /// <summary>No more sends, whatever is queued (the call ended, failed or was cancelled).</summary>
    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    internal void Stop()
    {
        _stopped = true;
        _close();
        _queue.Writer.TryComplete();
    }

    private async Task ForwardAsync()
    {
        var last = double.NegativeInfinity;
        await foreach (var value in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (_stopped) return;
            if (value.Progress <= last) continue;
            last = value.Progress;
            try
            {
                await _send(value).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The caller left; the call itself carries on and ends on its own.
            }
        }
    }
}
