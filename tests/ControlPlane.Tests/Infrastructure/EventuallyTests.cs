namespace ControlPlane.Tests.Infrastructure;

/// <summary>The shared wait: it returns once the condition holds, and fails saying what it waited for.</summary>
public sealed class EventuallyTests
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(1);

    [Fact]
    public async Task Returns_once_the_condition_holds_without_looking_again()
    {
        var looks = 0;

        await Eventually.TrueAsync(() => ++looks == 3, TimeSpan.FromSeconds(30), "the third look", Poll);

        Assert.Equal(3, looks);
    }

    [Fact]
    public async Task Awaits_an_asynchronous_condition()
    {
        var looks = 0;

        await Eventually.TrueAsync(async () =>
        {
            await Task.Yield();
            return ++looks == 2;
        }, TimeSpan.FromSeconds(30), "the second look", Poll);

        Assert.Equal(2, looks);
    }

    [Fact]
    public async Task Fails_after_the_timeout_with_what_it_waited_for()
    {
        var failure = await Assert.ThrowsAsync<TimeoutException>(() => Eventually.TrueAsync(() => false, TimeSpan.Zero, "the upstream to start", Poll));

        Assert.Equal("Timed out after 0 s waiting for the upstream to start.", failure.Message);
    }
}
