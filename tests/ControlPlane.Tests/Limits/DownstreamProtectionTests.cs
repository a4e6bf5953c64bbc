using System.Diagnostics;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Limits;

/// <summary>An unhealthy downstream fails fast with UPSTREAM_UNAVAILABLE and a retry_after, and gets left alone.</summary>
public sealed class DownstreamProtectionTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_failing_downstream_opens_its_circuit_and_a_hanging_one_times_out()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Downstream:Servers:lab:Timeout"] = "00:00:00.300",
            ["ControlPlane:Downstream:Servers:lab:MinimumThroughput"] = "4",
            ["ControlPlane:Downstream:Servers:lab:FailureRatio"] = "0.5",
            ["ControlPlane:Downstream:Servers:lab:SamplingDuration"] = "00:00:30",
            ["ControlPlane:Downstream:Servers:lab:BreakDuration"] = "00:00:20",
        });
        var (token, _) = await host.MintAsync("demo", "downstream-agent", scopes: ["server:lab:read", "server:support-desk:read"]);
        await using var client = await host.ConnectAsync(token);

        // A hanging downstream: the caller is released at the timeout, not left waiting.
        var hanging = Stopwatch.StartNew();
        var timedOut = RefusalAssert.Refused(await client.CallToolAsync("lab__hang"), RefusalCodes.UpstreamUnavailable);
        Assert.InRange(hanging.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10));
        Assert.Contains("did not answer", timedOut.GetProperty("message").GetString());
        Assert.True(timedOut.GetProperty("retry_after").GetInt32() > 0);

        RefusalAssert.Succeeded(await client.CallToolAsync("lab__flaky"));
        host.Lab.Failing = true;
        var failingSince = Stopwatch.StartNew();
        var callsUntilOpen = 0;
        CallToolResultSummary? open = null;
        for (var i = 0; i < 20 && open is null; i++)
        {
            var result = await client.CallToolAsync("lab__flaky");
            callsUntilOpen++;
            Assert.True(result.IsError);
            if (ControlPlane.Guard.Pipeline.Refusal.Read(result) is { } refusal && refusal.GetProperty("code").GetString() == RefusalCodes.UpstreamUnavailable) open = new(refusal);
        }

        Assert.NotNull(open);
        output.WriteLine($"circuit open after {callsUntilOpen} calls, {failingSince.Elapsed.TotalMilliseconds:0} ms after the downstream started failing");
        Assert.True(open!.RetryAfter is > 0 and <= 20, $"retry_after {open.RetryAfter}");

        // While open, calls do not reach the downstream at all, and other servers are unaffected.
        var reached = host.Lab.FlakyCalls;
        for (var i = 0; i < 5; i++) RefusalAssert.Refused(await client.CallToolAsync("lab__flaky"), RefusalCodes.UpstreamUnavailable);
        Assert.Equal(reached, host.Lab.FlakyCalls);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }));
        Assert.Contains("circuit is open", open.Refusal.GetProperty("message").GetString());

    }

    private sealed record CallToolResultSummary(System.Text.Json.JsonElement Refusal)
    {
        public int RetryAfter => Refusal.GetProperty("retry_after").GetInt32();
    }
}
