using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Tests.Limits;

/// <summary>Rate limits as politeness: RATE_LIMITED with a retry_after that, honoured, succeeds.</summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private ControlPlaneTestHost _host = null!;

    public async Task InitializeAsync() => _host = await ControlPlaneTestHost.StartAsync(configureServices: services =>
        services.AddKeyedSingleton<TimeProvider>(ControlPlaneClock.ServiceKey, _clock));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static readonly Dictionary<string, object?> Lookup = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task An_agent_over_its_budget_is_told_exactly_how_long_to_wait()
    {
        using var admin = _host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "agent", agentId = "polite-agent", capacity = 3, refillPerSecond = 0.5 });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        var (token, _) = await _host.MintAsync("demo", "polite-agent", scopes: ["server:support-desk:read"]);
        var (otherToken, _) = await _host.MintAsync("demo", "other-agent", scopes: ["server:support-desk:read"]);
        await using var client = await _host.ConnectAsync(token);
        await using var other = await _host.ConnectAsync(otherToken);

        for (var i = 0; i < 3; i++) RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.RateLimited);
        Assert.Equal("agent", refusal.GetProperty("scope").GetString());
        var retryAfter = refusal.GetProperty("retry_after").GetInt32();
        Assert.Equal(2, retryAfter);

        // Another agent of the same tenant is not held back by this one's bucket.
        RefusalAssert.Succeeded(await other.CallToolAsync("lookup_customer_by_email", Lookup));

        _clock.Advance(TimeSpan.FromSeconds(retryAfter - 1));
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.RateLimited);
        _clock.Advance(TimeSpan.FromSeconds(1));
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));

        var listed = await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/rate-limits");
        Assert.Contains(listed.GetProperty("items").EnumerateArray(), r => r.GetProperty("subject").GetString() == "polite-agent");

        var bad = await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "galaxy", capacity = -1, refillPerSecond = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task A_tool_bucket_protects_one_tool_for_the_whole_tenant()
    {
        using var admin = _host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "tool", serverId = "support-desk", toolName = "list_orders", capacity = 2, refillPerSecond = 1 });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        var (a, _) = await _host.MintAsync("demo", "tool-agent-a", scopes: ["server:support-desk:read"]);
        var (b, _) = await _host.MintAsync("demo", "tool-agent-b", scopes: ["server:support-desk:read"]);
        await using var first = await _host.ConnectAsync(a);
        await using var second = await _host.ConnectAsync(b);
        var orders = new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" };

        RefusalAssert.Succeeded(await first.CallToolAsync("list_orders", orders));
        RefusalAssert.Succeeded(await second.CallToolAsync("list_orders", orders));
        var refusal = RefusalAssert.Refused(await first.CallToolAsync("list_orders", orders), RefusalCodes.RateLimited);
        Assert.Equal("tool", refusal.GetProperty("scope").GetString());
        RefusalAssert.Succeeded(await first.CallToolAsync("lookup_customer_by_email", Lookup));
    }

    [Fact]
    public async Task A_refused_call_takes_nothing_from_the_other_buckets()
    {
        using var admin = _host.OperatorHttp();
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "tenant", capacity = 4, refillPerSecond = 0.01 })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "agent", agentId = "greedy-agent", capacity = 2, refillPerSecond = 0.01 })).StatusCode);

        var (greedyToken, _) = await _host.MintAsync("demo", "greedy-agent", scopes: ["server:support-desk:read"]);
        var (patientToken, _) = await _host.MintAsync("demo", "patient-agent", scopes: ["server:support-desk:read"]);
        await using var greedy = await _host.ConnectAsync(greedyToken);
        await using var patient = await _host.ConnectAsync(patientToken);

        for (var i = 0; i < 2; i++) RefusalAssert.Succeeded(await greedy.CallToolAsync("lookup_customer_by_email", Lookup));
        for (var i = 0; i < 5; i++)
        {
            var refusal = RefusalAssert.Refused(await greedy.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.RateLimited);
            Assert.Equal("agent", refusal.GetProperty("scope").GetString());
        }

        // The greedy agent's refused calls cost the tenant nothing: the tenant's other two calls are still there.
        for (var i = 0; i < 2; i++) RefusalAssert.Succeeded(await patient.CallToolAsync("lookup_customer_by_email", Lookup));
        var tenantRefusal = RefusalAssert.Refused(await patient.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.RateLimited);
        Assert.Equal("tenant", tenantRefusal.GetProperty("scope").GetString());
    }
}
