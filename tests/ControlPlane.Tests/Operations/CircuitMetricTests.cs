using System.Diagnostics.Metrics;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

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

        RefusalAssert.Succeeded(await client.CallToolAsync("lab__flaky"));
        ExpectCircuit(host, 0);

        host.Lab.Failing = true;
        var opened = false;
        for (var i = 0; i < 20 && !opened; i++)
        {
            var result = await client.CallToolAsync("lab__flaky");
            var refusal = ControlPlane.Guard.Pipeline.Refusal.Read(result);
            opened = refusal?.GetProperty("code").GetString() == RefusalCodes.UpstreamUnavailable
                && refusal.Value.GetProperty("message").GetString()!.Contains("circuit is open", StringComparison.Ordinal);
        }

        Assert.True(opened, "The circuit never opened.");
        ExpectCircuit(host, 2);

        // Healthy again: after the break the next call is the half-open probe; its success closes the circuit.
        host.Lab.Failing = false;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await Task.Delay(1200);
            if ((await client.CallToolAsync("lab__flaky")).IsError is not true) break;
            Assert.True(DateTime.UtcNow < deadline, "The circuit did not close within 30 s.");
        }

        ExpectCircuit(host, 0);
    }

    /// <summary>
    /// Reads this host's gauge through a listener bound to the host's own meter factory: test hosts in one process
    /// share meter names, so a /metrics scrape could mix in (or lose) other hosts' series. The Prometheus path
    /// itself is covered by <see cref="DashboardTests"/> against a separate process.
    /// </summary>
    private static void ExpectCircuit(ControlPlaneTestHost host, int expected)
    {
        var factory = host.Services.GetRequiredService<IMeterFactory>();
        var seen = new Dictionary<string, int>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == "controlplane.upstream.circuit_state") l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "server") seen[(string)tag.Value!] = value;
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.True(seen.TryGetValue("lab", out var actual), "No circuit state reported for server 'lab'.");
        Assert.Equal(expected, actual);
    }
}
