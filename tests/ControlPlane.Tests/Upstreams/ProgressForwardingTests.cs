using ControlPlane.Upstreams;
using ModelContextProtocol;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// The gateway receives an upstream's progress notifications in any order (the SDK handles each message on its own
/// task); what it forwards to the caller must still only go forwards, one notification at a time.
/// </summary>
public sealed class ProgressForwardingTests
{
    [Fact]
    public async Task A_value_overtaken_by_a_later_one_is_dropped_not_sent_backwards()
    {
        var forwarding = new ProgressForwarding();
        var sent = new List<float>();
        foreach (var value in new[] { 1f, 2f, 4f, 3f, 4f, 5f })
        {
            await forwarding.ForwardInOrderAsync(new ProgressNotificationValue { Progress = value, Total = 5 }, v =>
            {
                sent.Add(v.Progress);
                return Task.CompletedTask;
            }, CancellationToken.None);
        }

        Assert.Equal([1f, 2f, 4f, 5f], sent);
    }

    [Fact]
    public async Task Concurrent_notifications_are_sent_one_at_a_time_and_in_increasing_order()
    {
        var forwarding = new ProgressForwarding();
        var sent = new List<float>();
        var inSend = 0;
        var overlapped = false;
        var values = Enumerable.Range(1, 200).Select(i => (float)i).OrderBy(_ => Random.Shared.Next()).ToList();

        await Task.WhenAll(values.Select(value => Task.Run(() => forwarding.ForwardInOrderAsync(
            new ProgressNotificationValue { Progress = value },
            async v =>
            {
                if (Interlocked.Increment(ref inSend) > 1) overlapped = true;
                await Task.Yield();
                lock (sent) sent.Add(v.Progress);
                Interlocked.Decrement(ref inSend);
            },
            CancellationToken.None))));

        Assert.False(overlapped);
        Assert.NotEmpty(sent);
        Assert.Equal(sent.Order(), sent);
        Assert.Equal(sent.Count, sent.Distinct().Count());
        Assert.Equal(200f, sent[^1]);
    }
}
