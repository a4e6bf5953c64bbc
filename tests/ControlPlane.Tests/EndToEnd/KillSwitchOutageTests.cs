using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Grains;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// An operator is never told a switch is set when it is not: with the grain store down, a flip through either of two
/// silos answers 503 with Retry-After and GUARD_UNAVAILABLE (never 500), and changes nothing; the same flip after
/// the store is back answers 201, is refused on both silos at once, and is audited once.
/// </summary>
public sealed class KillSwitchOutageTests
{
    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task A_flip_during_a_store_outage_is_a_503_from_every_silo_and_its_retry_is_enforced_and_audited_once()
    {
        var faults = new StorageFaults();
        faults.StateNames.Add("guard-state");
        await using var first = await ControlPlaneTestHost.StartAsync(decorateServices: s => s.AddStorageFaults(StorageNames.ControlPlane, faults));
        await using var second = await ControlPlaneTestHost.StartAsync(dataDir: first.DataDir, primarySiloPort: first.SiloPort,
            decorateServices: s => s.AddStorageFaults(StorageNames.ControlPlane, faults));
        var (token, _) = await first.MintAsync("demo", "outage-agent", scopes: ["server:support-desk:read"]);
        await using var onFirst = await first.ConnectAsync(token);
        await using var onSecond = await second.ConnectAsync(token);
        var body = new { scope = "agent", tenantId = "demo", agentId = "outage-agent", reason = "incident during a store outage" };

        faults.Down = true;
        foreach (var host in new[] { first, second })
        {
            using var admin = host.OperatorHttp();
            var response = await admin.PostAsJsonAsync("/api/v1/kill-switches", body);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"Expected 503 from {host.BaseUrl}, got {(int)response.StatusCode}: {text}");
            Assert.NotNull(response.Headers.RetryAfter);
            Assert.Equal(RefusalCodes.GuardUnavailable, JsonDocument.Parse(text).RootElement.GetProperty("code").GetString());
        }

        // Nothing changed: not listed, not enforced on either silo.
        using (var admin = second.OperatorHttp())
        {
            var listed = await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
            Assert.DoesNotContain(listed.GetProperty("items").EnumerateArray(), s => s.TryGetProperty("agentId", out var agent) && agent.GetString() == "outage-agent");
        }

        RefusalAssert.Succeeded(await onFirst.CallToolAsync("lookup_customer_by_email", Ada));
        RefusalAssert.Succeeded(await onSecond.CallToolAsync("lookup_customer_by_email", Ada));

        // The store is back: the same request works like a first try, and both silos refuse the very next call.
        faults.Down = false;
        using (var admin = second.OperatorHttp())
        {
            var response = await admin.PostAsJsonAsync("/api/v1/kill-switches", body);
            Assert.True(response.StatusCode == HttpStatusCode.Created, $"Expected 201, got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        RefusalAssert.Refused(await onFirst.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
        RefusalAssert.Refused(await onSecond.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);

        using (var admin = first.OperatorHttp())
        {
            var audit = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&kind=operator/kill-switch.set&limit=50");
            Assert.Single(audit.GetProperty("items").EnumerateArray(), r => r.GetProperty("detail").GetString()!.Contains("outage-agent", StringComparison.Ordinal));
        }
    }
}
