namespace ControlPlane.Tests.Infrastructure;

/// <summary>The suite's one wait-until: polls a condition until it holds, or fails the test saying what never happened.</summary>
public static class Eventually
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string because) =>
        TrueAsync(() => Task.FromResult(condition()), timeout, because);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string because)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"Within {timeout.TotalSeconds:0.#} s, {because}.");
            await Task.Delay(PollInterval);
        }
    }
}
