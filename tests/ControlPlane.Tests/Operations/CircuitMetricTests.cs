using System.Globalization;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Operations;

/// <summary>The upstream circuit gauge follows the real Polly breaker of a failing, then recovering, tool server.</summary>
public sealed class CircuitMetricTests
{
    [Fact]
    public async Task The_circuit_state_gauge_shows_open_while_a_server_is_failing_and_closed_once_it_recovers()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Downstream:Servers:lab:MinimumThroughput"] = "2",
            ["ControlPlane:Downstream:Servers:lab:FailureRatio"] = "0.5",
            ["ControlPlane:Downstream:Servers:lab:SamplingDuration"] = "00:00:30",
            ["ControlPlane:Downstream:Servers:lab:BreakDuration"] = "00:00:01",
        });
        var (token, _) = await host.MintAsync("demo", "circuit-agent", scopes: ["server:lab:read"]);
        await using var client = await host.ConnectAsync(token);
        using var http = host.Http();

        RefusalAssert.Succeeded(await client.CallToolAsync("lab__flaky"));
        await ExpectCircuitAsync(http, 0);

        host.Lab.Failing = true;
        var opened = false;
        for (var i = 0; i < 20 && !opened; i++)
        {
            var result = await client.CallToolAsync("lab__flaky");
            opened = result.StructuredContent?.GetProperty("code").GetString() == RefusalCodes.UpstreamUnavailable
                && result.StructuredContent.Value.GetProperty("message").GetString()!.Contains("circuit is open", StringComparison.Ordinal);
        }

        Assert.True(opened, "The circuit never opened.");
        await ExpectCircuitAsync(http, 2);

        // Healthy again: after the break the next call is the half-open probe; its success closes the circuit.
        host.Lab.Failing = false;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await Task.Delay(1200);
            if ((await client.CallToolAsync("lab__flaky")).IsError is not true) break;
            Assert.True(DateTime.UtcNow < deadline, "The circuit did not close within 30 s.");
        }

        await ExpectCircuitAsync(http, 0);
    }

    /// <summary>Scrapes until the gauge shows the state (the exporter may serve a scrape cached for a moment).</summary>
    private static async Task ExpectCircuitAsync(HttpClient http, double expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        double actual;
        while ((actual = await LabCircuitAsync(http)) != expected && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.Equal(expected, actual);
    }

    private static async Task<double> LabCircuitAsync(HttpClient http)
    {
        var line = (await http.GetStringAsync("/metrics")).Split('\n')
            .Single(l => l.StartsWith("controlplane_upstream_circuit_state{", StringComparison.Ordinal) && l.Contains("server=\"lab\""));
        return double.Parse(line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
