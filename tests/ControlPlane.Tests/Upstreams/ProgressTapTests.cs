using System.Text.Json.Nodes;
using System.Threading.Channels;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Upstreams;
using Microsoft.Extensions.Time.Testing;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// The SDK handles each upstream message on its own task, so its notification handlers see progress in any order and
/// can see the last of it after the result. The gateway reads progress off the transport instead, in the order the
/// upstream sent it, and forwards it to the caller only forwards, one notification at a time.
/// </summary>
public sealed class ProgressTapTests
{
    [Fact]
    public async Task Every_notification_sent_before_the_result_reaches_the_caller_in_order_before_the_result()
    {
        var (upstream, tap, transport) = await TappedAsync();
        var sent = new List<float>();
        var inSend = 0;
        var overlapped = false;
        await using var relay = tap.Open("call-1", async value =>
        {
            if (Interlocked.Increment(ref inSend) > 1) overlapped = true;
            // A slow caller: every send yields, so the SDK-handler approach reordered these.
            await Task.Yield();
            lock (sent) sent.Add(value.Progress);
            Interlocked.Decrement(ref inSend);
        });

        for (var i = 1; i <= 200; i++) upstream.Send(Progress("call-1", i));
        upstream.Send(Progress("another-call", 7));
        upstream.Send(new JsonRpcResponse { Id = new RequestId(1), Result = new JsonObject() });

        // What the SDK sees: every message, in order, the result last.
        var seen = new List<JsonRpcMessage>();
        while (seen.Count < 202) seen.Add(await transport.MessageReader.ReadAsync());
        Assert.IsType<JsonRpcResponse>(seen[^1]);

        await relay.FlushAsync(TimeSpan.FromSeconds(30), TimeProvider.System);
        Assert.False(overlapped);
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (float)i), sent);
    }

    [Fact]
    public async Task A_value_that_does_not_increase_is_dropped_not_sent_backwards()
    {
        var (upstream, tap, transport) = await TappedAsync();
        var sent = new List<float>();
        await using var relay = tap.Open("call-2", value =>
        {
            sent.Add(value.Progress);
            return Task.CompletedTask;
        });

        foreach (var value in new[] { 1f, 2f, 4f, 3f, 4f, 5f }) upstream.Send(Progress("call-2", value));
        for (var i = 0; i < 6; i++) await transport.MessageReader.ReadAsync();
        await relay.FlushAsync(TimeSpan.FromSeconds(30), TimeProvider.System);

        Assert.Equal([1f, 2f, 4f, 5f], sent);
    }

    [Fact]
    public async Task A_caller_that_does_not_read_holds_the_result_back_only_for_the_bound_and_gets_nothing_after_it()
    {
        var (upstream, tap, transport) = await TappedAsync();
        var stuck = new TaskCompletionSource();
        var sent = new List<float>();
        await using var relay = tap.Open("call-3", async value =>
        {
            lock (sent) sent.Add(value.Progress);
            await stuck.Task;
        });
        upstream.Send(Progress("call-3", 1));
        upstream.Send(Progress("call-3", 2));
        for (var i = 0; i < 2; i++) await transport.MessageReader.ReadAsync();
        // The caller has taken the first value and is stuck on it (a loaded machine may take a moment to get there).
        await Eventually.TrueAsync(() => { lock (sent) return sent.Count == 1; }, TimeSpan.FromSeconds(30), "the caller to receive the first progress value");

        var clock = new FakeTimeProvider();
        var flush = relay.FlushAsync(TimeSpan.FromSeconds(1), clock);
        Assert.False(flush.IsCompleted);
        clock.Advance(TimeSpan.FromSeconds(1));
        await flush.WaitAsync(TimeSpan.FromSeconds(30));

        // The result has gone: the caller's read comes back, and the value still queued is never sent after it.
        stuck.SetResult();
        await Task.Delay(200);
        lock (sent) Assert.Equal([1f], sent);
    }

    [Fact]
    public async Task When_the_upstream_closes_the_sdk_sees_it_close_with_its_reason()
    {
        var (upstream, _, transport) = await TappedAsync();
        upstream.Close(new IOException("the upstream exited"));

        // The SDK reads with ReadAllAsync: the reason comes out of it as it went in.
        var closed = await Assert.ThrowsAsync<IOException>(async () =>
        {
            await foreach (var message in transport.MessageReader.ReadAllAsync()) Assert.Fail($"Unexpected message {message}.");
        });
        Assert.Equal("the upstream exited", closed.Message);
    }

    /// <summary>A scripted upstream with a tap between it and what the SDK reads.</summary>
    private static async Task<(ScriptedTransport Upstream, ProgressTap Tap, ITransport Transport)> TappedAsync()
    {
        var upstream = new ScriptedTransport();
        var tap = new ProgressTap();
        return (upstream, tap, await tap.Wrap(upstream).ConnectAsync());
    }

    private static JsonRpcNotification Progress(string token, float value) => new()
    {
        Method = NotificationMethods.ProgressNotification,
        Params = new JsonObject { ["progressToken"] = token, ["progress"] = value, ["total"] = 200 },
    };

    /// <summary>An upstream whose messages the test writes, in order.</summary>
    private sealed class ScriptedTransport : IClientTransport, ITransport
    {
        private readonly Channel<JsonRpcMessage> _incoming = Channel.CreateUnbounded<JsonRpcMessage>();

        public string Name => "scripted";

        public string? SessionId => null;

        public ChannelReader<JsonRpcMessage> MessageReader => _incoming.Reader;

        public void Send(JsonRpcMessage message) => Assert.True(_incoming.Writer.TryWrite(message));

        public void Close(Exception reason) => _incoming.Writer.TryComplete(reason);

        public Task<ITransport> ConnectAsync(CancellationToken cancellationToken = default) => Task.FromResult<ITransport>(this);

        public Task SendMessageAsync(JsonRpcMessage message, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public ValueTask DisposeAsync()
        {
            _incoming.Writer.TryComplete();
            return ValueTask.CompletedTask;
        }
    }
}
