using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>/metrics serves the guard's metrics in Prometheus text format, moving with real calls.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class MetricsTests(EmbeddedHostFixture fixture)
{
    [Fact]
    public async Task Calls_refusals_guard_latency_kill_switches_and_audit_are_exported()
    {
        var host = fixture.Host;
        await using (var client = await host.ConnectAsync())
        {
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }));
            RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "x" }), RefusalCodes.ReadOnly);
        }

        using var http = host.Http();
        var text = await http.GetStringAsync("/metrics");
        Assert.Contains("controlplane_calls_total{", text);
        Assert.Contains("decision=\"allowed\"", text);
        Assert.Contains("tool=\"lookup_customer_by_email\"", text);
        var lines = text.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("controlplane_refusals_total{", StringComparison.Ordinal) && l.Contains("code=\"READ_ONLY\""));
        Assert.Contains("controlplane_guard_duration_milliseconds_bucket", text);
        Assert.Contains("controlplane_kill_switches_active", text);
        Assert.Contains("controlplane_guard_state_age_seconds", text);
        Assert.Contains("controlplane_audit_written_total", text);
        Assert.Contains("controlplane_audit_queued", text);
        Assert.DoesNotContain(host.Credentials.AgentToken, text);
    }
}
