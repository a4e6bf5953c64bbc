using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// A stopping silo drains: from SIGTERM on, /readyz answers 503 so a load balancer moves clients away, and the silo
/// keeps serving calls for the drain delay before it stops.
/// </summary>
public sealed class GracefulStopTests
{
    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task At_SIGTERM_readyz_turns_503_and_calls_are_still_served_through_the_drain()
    {
        var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?> { ["ControlPlane:Shutdown:DrainDelay"] = "00:00:05" });
        try
        {
            await using var client = await host.ConnectAsync();
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
            using var probe = host.Http();
            Assert.Equal(System.Net.HttpStatusCode.OK, (await probe.GetAsync("/readyz")).StatusCode);

            var stopping = host.StopAsync();
            await Eventually.TrueAsync(async () => (await probe.GetAsync("/readyz")).StatusCode == System.Net.HttpStatusCode.ServiceUnavailable,
                TimeSpan.FromSeconds(2), "/readyz to answer 503 once the silo is stopping", TimeSpan.FromMilliseconds(20));
            Assert.Contains("draining", await (await probe.GetAsync("/readyz")).Content.ReadAsStringAsync(), StringComparison.Ordinal);

            // Still serving: the load balancer has not moved every client yet.
            Assert.False(stopping.IsCompleted);
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));

            await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await host.DisposeAsync();
        }
    }
}
