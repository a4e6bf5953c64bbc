namespace ControlPlane.Tests.Infrastructure;

/// <summary>
/// Waits for something another thread, silo or process makes true (a call reaching an upstream, a session parked by
/// the SDK's sweep, a process killed): polls the condition, and fails with <c>because</c> once the timeout has passed.
/// Not for what the test itself drives; there a TaskCompletionSource or a FakeTimeProvider says when.
/// </summary>
internal static class Eventually
{
    private static readonly TimeSpan DefaultPoll = TimeSpan.FromMilliseconds(100);

    /// <param name="because">What is awaited, for the failure: "Timed out after 60 s waiting for {because}."</param>
    /// <param name="poll">How long to wait between looks; 100 ms unless the condition is cheaper or dearer than usual.</param>
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string because, TimeSpan? poll = null) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, because, poll);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string because, TimeSpan? poll = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.###} s waiting for {because}.");
            await Task.Delay(poll ?? DefaultPoll);
        }
    }
}
