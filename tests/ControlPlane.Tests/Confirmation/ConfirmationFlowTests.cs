using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Confirmation;

/// <summary>
/// The whole human-confirmation flow through a real MCP client: refused, approved through the API,
/// retried with the token, succeeded; replay, tampered arguments, another tool and an expired token refused.
/// The confirmation clock is a fake one, so expiry needs no sleeping.
/// </summary>
public sealed class ConfirmationFlowTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private ControlPlaneTestHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = await ControlPlaneTestHost.StartAsync(configureServices: services =>
            services.AddKeyedSingleton<TimeProvider>(ControlPlaneClock.ServiceKey, _clock));
        await _host.SetModeAsync("demo", "support-desk", "read-write");
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static Dictionary<string, object?> Refund(long amount = 4200) =>
        new() { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = amount, ["reason"] = "duplicate" };

    private async Task<(string ApprovalId, JsonElement Refusal)> RequestAsync(McpClient client, Dictionary<string, object?> args)
    {
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("create_refund", args), RefusalCodes.RequiresConfirmation);
        return (refusal.GetProperty("approval_id").GetString()!, refusal);
    }

    private async Task<string> ApproveAsync(string approvalId)
    {
        using var http = _host.OperatorHttp();
        var response = await http.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(body.GetProperty("expiresAt").GetDateTimeOffset() > _clock.GetUtcNow());
        return body.GetProperty("confirmationToken").GetString()!;
    }

    private static Dictionary<string, object?> With(Dictionary<string, object?> args, string token) => new(args) { ["confirmation_token"] = token };

    [Fact]
    public async Task Refused_approved_retried_succeeded_and_a_replay_is_refused()
    {
        await using var client = await _host.ConnectAsync();
        var (approvalId, refusal) = await RequestAsync(client, Refund());

        // The assistant gets a next step: what is proposed, where the approval lives, until when.
        var proposed = refusal.GetProperty("proposed_action");
        Assert.Equal("create_refund", proposed.GetProperty("tool").GetString());
        Assert.Equal(4200, proposed.GetProperty("arguments").GetProperty("amount_cents").GetInt32());
        Assert.True(refusal.GetProperty("expires_at").GetDateTimeOffset() > _clock.GetUtcNow());
        Assert.Contains(approvalId, refusal.GetProperty("message").GetString());

        // The same call again does not flood the queue: it points at the same open approval.
        var (again, _) = await RequestAsync(client, Refund());
        Assert.Equal(approvalId, again);

        using (var http = _host.OperatorHttp())
        {
            var pending = await http.GetFromJsonAsync<JsonElement>("/api/v1/approvals?status=pending");
            var item = Assert.Single(pending.GetProperty("items").EnumerateArray(), i => i.GetProperty("id").GetString() == approvalId);
            Assert.Equal("demo", item.GetProperty("tenantId").GetString());
            Assert.Equal("create_refund", item.GetProperty("tool").GetString());
            Assert.Equal("cust_DEMO00000001", item.GetProperty("arguments").GetProperty("customer_id").GetString());
        }

        var token = await ApproveAsync(approvalId);
        var receipt = await client.CallToolAsync("create_refund", With(Refund(), token));
        RefusalAssert.Succeeded(receipt);
        Assert.Equal("issued", receipt.StructuredContent!.Value.GetProperty("status").GetString());

        var replay = RefusalAssert.Refused(await client.CallToolAsync("create_refund", With(Refund(), token)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("already used", replay.GetProperty("reason").GetString());

        using (var http = _host.OperatorHttp())
        {
            var twice = await http.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
            Assert.Equal(HttpStatusCode.Conflict, twice.StatusCode);

            // The approval and its use are in the audit, with the approver; the call's intent (written before it ran) and
            // its result both carry the approval id.
            var audit = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&tool=create_refund&limit=100");
            var items = audit.GetProperty("items").EnumerateArray().ToList();
            Assert.Contains(items, i => i.GetProperty("kind").GetString() == "approval/approved" && i.GetProperty("detail").GetString()!.Contains("admin"));
            Assert.Contains(items, i => i.GetProperty("kind").GetString() == "tools/call" && i.GetProperty("outcome").GetString() == "success"
                && i.GetProperty("confirmationId").GetString() == approvalId);
            Assert.DoesNotContain(token, JsonSerializer.Serialize(items));

            var intents = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&tool=create_refund&includeIntents=true&limit=100");
            Assert.Single(intents.GetProperty("items").EnumerateArray(), i => i.GetProperty("kind").GetString() == "tools/call:intent"
                && i.GetProperty("confirmationId").GetString() == approvalId);
        }
    }

    [Fact]
    public async Task Tampered_arguments_another_tool_and_an_expired_token_are_refused()
    {
        await using var client = await _host.ConnectAsync();

        var (tamperId, _) = await RequestAsync(client, Refund(100));
        var tamperToken = await ApproveAsync(tamperId);
        var tampered = RefusalAssert.Refused(await client.CallToolAsync("create_refund", With(Refund(99_999), tamperToken)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("arguments differ", tampered.GetProperty("reason").GetString());
        // The honest call still works with it: a mismatch does not burn the token.
        RefusalAssert.Succeeded(await client.CallToolAsync("create_refund", With(Refund(100), tamperToken)));

        var (expiringId, _) = await RequestAsync(client, Refund(200));
        var expiringToken = await ApproveAsync(expiringId);
        _clock.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(1));
        var expired = RefusalAssert.Refused(await client.CallToolAsync("create_refund", With(Refund(200), expiringToken)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("expired", expired.GetProperty("reason").GetString());

        var garbage = RefusalAssert.Refused(await client.CallToolAsync("create_refund", With(Refund(300), "cpc_apr-0000_" + new string('A', 43))), RefusalCodes.RequiresConfirmation);
        Assert.False(string.IsNullOrEmpty(garbage.GetProperty("reason").GetString()));
    }

    [Fact]
    public async Task A_pending_request_expires_and_another_tenants_token_never_works()
    {
        await using var demo = await _host.ConnectAsync();
        var (pendingId, _) = await RequestAsync(demo, Refund(500));
        _clock.Advance(TimeSpan.FromMinutes(31));
        using (var http = _host.OperatorHttp())
        {
            Assert.Equal(HttpStatusCode.Conflict, (await http.PostAsync($"/api/v1/approvals/{pendingId}/approve", null)).StatusCode);
            var pending = await http.GetFromJsonAsync<JsonElement>("/api/v1/approvals?status=pending");
            Assert.DoesNotContain(pending.GetProperty("items").EnumerateArray(), i => i.GetProperty("id").GetString() == pendingId);
        }

        await _host.EnsureTenantAsync("acme");
        await _host.SetModeAsync("acme", "support-desk", "read-write");
        var (acmeToken, _) = await _host.MintAsync("acme", "acme-agent", scopes: ["server:support-desk:write", "server:support-desk:read"]);
        await using var acme = await _host.ConnectAsync(acmeToken);

        var (demoId, _) = await RequestAsync(demo, Refund(600));
        var demoToken = await ApproveAsync(demoId);
        var stolen = RefusalAssert.Refused(await acme.CallToolAsync("create_refund", With(Refund(600), demoToken)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("another tenant", stolen.GetProperty("reason").GetString());
        RefusalAssert.Succeeded(await demo.CallToolAsync("create_refund", With(Refund(600), demoToken)));
    }

    [Fact]
    public async Task Agents_cannot_approve_and_approvers_cannot_approve_their_own_actions()
    {
        await using var client = await _host.ConnectAsync();
        var (approvalId, _) = await RequestAsync(client, Refund(700));

        using (var agent = _host.Http(_host.Credentials.AgentToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await agent.PostAsync($"/api/v1/approvals/{approvalId}/approve", null)).StatusCode);
        }

        // An approver whose operator id is the demo user the agent acts for.
        var directory = _host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "demo-user");
        await directory.UpsertAsync(new OperatorAccount("demo-user", [OperatorRoles.Approver], [], hash, DateTimeOffset.UtcNow));
        using (var self = _host.Http(key))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await self.PostAsync($"/api/v1/approvals/{approvalId}/approve", null)).StatusCode);
        }

        var (_, viewerKey, viewerHash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "approvals-viewer");
        await directory.UpsertAsync(new OperatorAccount("approvals-viewer", [OperatorRoles.Viewer], [], viewerHash, DateTimeOffset.UtcNow));
        using (var viewer = _host.Http(viewerKey))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsync($"/api/v1/approvals/{approvalId}/approve", null)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/v1/approvals?status=pending")).StatusCode);
        }

        using var admin = _host.OperatorHttp();
        var denied = await admin.PostAsJsonAsync($"/api/v1/approvals/{approvalId}/deny", new { reason = "amount looks wrong" });
        Assert.Equal(HttpStatusCode.OK, denied.StatusCode);
        Assert.Equal("denied", (await denied.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsJsonAsync($"/api/v1/approvals/{approvalId}/deny", new { reason = "" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/v1/approvals/apr-nope/approve", null)).StatusCode);
    }
}
