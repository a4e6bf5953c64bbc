using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Approvals;
using ControlPlane.Audit.Storage;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Guard.Authentication;
using ControlPlane.Host.Operations;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Audit;

/// <summary>Operator actions land in the same tamper-evident trail as calls: who, what, which target, why; never a secret.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class OperatorAuditTests(EmbeddedHostFixture fixture)
{
    private const string Cluster = "_cluster";

    private ControlPlaneTestHost Host => fixture.Host;

    [Fact]
    public async Task Each_operator_action_leaves_exactly_one_record_with_actor_target_and_reason_and_no_secret()
    {
        var tenant = "opa-" + Guid.NewGuid().ToString("N")[..8];
        var server = "opa-up-" + Guid.NewGuid().ToString("N")[..6];
        const string HeaderSecret = "hdr-secret-7f3a9c1e";
        const string QuerySecret = "query-secret-52be0d";
        using var admin = Host.OperatorHttp();

        await Ok(admin.PostAsJsonAsync("/api/v1/tenants", new { id = tenant, name = "Operator audit" }));
        var minted = await Ok(admin.PostAsJsonAsync($"/api/v1/tenants/{tenant}/tokens",
            new { agentId = "opa-agent", userId = "opa-user", scopes = new[] { "server:support-desk:read", "server:support-desk:write" } }));
        var tokenId = minted.GetProperty("id").GetString()!;
        var bearer = minted.GetProperty("token").GetString()!;
        await Ok(admin.PutAsJsonAsync($"/api/v1/tenants/{tenant}/servers/support-desk/mode", new { mode = "read-write", reason = "opa: refunds for the pilot" }));
        await Ok(admin.PutAsJsonAsync($"/api/v1/tenants/{tenant}/rate-limits", new { scope = "agent", agentId = "opa-agent", capacity = 50, refillPerSecond = 5 }));
        var kill = await Ok(admin.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = tenant, agentId = "opa-agent", reason = "opa: agent looping" }));
        var switchId = kill.GetProperty("id").GetString()!;
        await Ok(admin.PostAsJsonAsync($"/api/v1/kill-switches/{switchId}/clear", new { reason = "opa: loop fixed" }));
        await Ok(admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/lookup_customer_by_email",
            new { classification = "action", tenantId = tenant, reason = "opa: treat lookups as actions" }));
        await Ok(admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/lookup_customer_by_email",
            new { classification = "read", tenantId = tenant, reason = "opa: back to read" }));
        await Ok(admin.PostAsJsonAsync("/api/v1/servers", new
        {
            id = server, tenantId = tenant, transport = "http", url = $"http://127.0.0.1:9/mcp?key={QuerySecret}",
            headers = new Dictionary<string, string> { ["Authorization"] = "Bearer " + HeaderSecret },
        }));
        await Ok(admin.DeleteAsync($"/api/v1/servers/{server}"));

        // An approval, approved with a reason (permissive, audited by the approval itself).
        await using (var client = await Host.ConnectAsync(bearer))
        {
            var refund = new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 77, ["reason"] = "requested" };
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("create_refund", refund), RefusalCodes.RequiresConfirmation);
            var approvalId = refusal.GetProperty("approval_id").GetString()!;
            var approved = await Ok(admin.PostAsJsonAsync($"/api/v1/approvals/{approvalId}/approve", new { reason = "opa: customer called in" }));
            RefusalAssert.Succeeded(await client.CallToolAsync("create_refund",
                new Dictionary<string, object?>(refund) { ["confirmation_token"] = approved.GetProperty("confirmationToken").GetString() }));

            var stored = await Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IApprovalGrain>(approvalId).GetAsync();
            Assert.Equal("opa: customer called in", stored!.Reason);
            Assert.Equal("admin", stored.DecidedBy);
            var record = Assert.Single(await Items(admin, $"tenantId={tenant}&kind=approval/approved"));
            Assert.Contains("opa: customer called in", record.GetProperty("detail").GetString());
        }

        await Ok(admin.DeleteAsync($"/api/v1/tenants/{tenant}/tokens/{tokenId}"));
        await Ok(admin.PutAsJsonAsync($"/api/v1/tenants/{tenant}/servers/support-desk/mode", new { mode = "read-only", reason = "opa: pilot over" }));

        // Exactly one record per action, newest first, each with the operator as actor. A protective action (the last
        // one, back to read-only) answers after at most 3 s even if its record is still being committed: wait for it.
        var events = await Items(admin, $"tenantId={tenant}&kind=operator/*&limit=100");
        for (var deadline = DateTime.UtcNow.AddSeconds(30); events.Length < 12 && DateTime.UtcNow < deadline;)
        {
            await Task.Delay(200);
            events = await Items(admin, $"tenantId={tenant}&kind=operator/*&limit=100");
        }

        string[] expected =
        [
            "mode.set", "token.revoke", "server.remove", "server.register", "tool-classification.set", "tool-classification.set",
            "kill-switch.clear", "kill-switch.set", "rate-limit.set", "mode.set", "token.mint", "tenant.create",
        ];
        Assert.Equal(expected.Select(a => "operator/" + a), events.Select(e => e.GetProperty("kind").GetString()));
        Assert.All(events, e =>
        {
            Assert.Equal("admin", e.GetProperty("userId").GetString());
            Assert.Equal(tenant, e.GetProperty("tenantId").GetString());
            Assert.Equal("admin", e.GetProperty("arguments").GetProperty("operator").GetString());
        });

        JsonElement Event(string action, Func<JsonElement, bool>? where = null) =>
            Assert.Single(events, e => e.GetProperty("kind").GetString() == "operator/" + action && (where is null || where(Target(e))));
        Assert.Equal(tokenId, Event("token.mint").GetProperty("tokenId").GetString());
        Assert.Equal("opa-agent", Target(Event("token.mint")).GetProperty("agentId").GetString());
        Assert.Equal(tokenId, Target(Event("token.revoke")).GetProperty("tokenId").GetString());
        Assert.Equal("opa: refunds for the pilot", Reason(Event("mode.set", t => t.GetProperty("mode").GetString() == "read-write")));
        Assert.Equal("opa: pilot over", Reason(Event("mode.set", t => t.GetProperty("mode").GetString() == "read-only")));
        Assert.Equal("opa: agent looping", Reason(Event("kill-switch.set", t => t.GetProperty("switchId").GetString() == switchId)));
        Assert.Equal("opa: loop fixed", Reason(Event("kill-switch.clear", t => t.GetProperty("switchId").GetString() == switchId)));
        Assert.Equal("opa-agent", Event("kill-switch.set").GetProperty("agentId").GetString());
        Assert.Equal("opa: treat lookups as actions", Reason(Event("tool-classification.set", t => t.GetProperty("classification").GetString() == "action")));
        Assert.Equal("lookup_customer_by_email", Event("tool-classification.set", t => t.GetProperty("classification").GetString() == "read").GetProperty("tool").GetString());
        Assert.Equal("50", Target(Event("rate-limit.set")).GetProperty("capacity").GetString());
        var registered = Event("server.register");
        Assert.Equal(server, registered.GetProperty("server").GetString());
        Assert.Equal("Authorization", Target(registered).GetProperty("headerNames").GetString());
        Assert.Equal(server, Event("server.remove").GetProperty("server").GetString());

        // No secret anywhere in the records: not the bearer, not a header value, not a URL query.
        var everything = await admin.GetStringAsync($"/api/v1/audit/export?format=jsonl&tenantId={tenant}&includeIntents=true")
            + await admin.GetStringAsync($"/api/v1/audit/export?format=csv&tenantId={tenant}");
        Assert.Contains(tokenId, everything);
        Assert.DoesNotContain(bearer, everything);
        Assert.DoesNotContain(bearer[^12..], everything);
        Assert.DoesNotContain(HeaderSecret, everything);
        Assert.DoesNotContain(QuerySecret, everything);

        var chain = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit/verify?tenantId={tenant}");
        Assert.True(chain.GetProperty("ok").GetBoolean(), chain.ToString());
    }

    [Fact]
    public async Task Actions_without_a_tenant_go_to_the_cluster_chain_which_only_all_tenant_operators_can_read()
    {
        var tenant = "opb-" + Guid.NewGuid().ToString("N")[..8];
        var tool = "opb-" + Guid.NewGuid().ToString("N")[..8];
        await Host.EnsureTenantAsync(tenant);
        using var admin = Host.OperatorHttp();

        // A tool switch in every tenant (a tool no server has, so other tests are not disturbed) and its clear.
        var kill = await Ok(admin.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "tool", serverId = "opb-nowhere", toolName = tool, reason = "opb: cluster-wide stop" }));
        var switchId = kill.GetProperty("id").GetString()!;
        await Ok(admin.PostAsJsonAsync($"/api/v1/kill-switches/{switchId}/clear", new { reason = "opb: all clear" }));
        await Ok(admin.PutAsJsonAsync($"/api/v1/tenants/{tenant}/servers/support-desk/mode", new { mode = "read-only", reason = "opb: tenant event" }));

        var cluster = await Items(admin, $"tenantId={Cluster}&kind=operator/kill-switch.*&limit=200");
        var set = Assert.Single(cluster, e => e.GetProperty("kind").GetString() == "operator/kill-switch.set" && Target(e).GetProperty("switchId").GetString() == switchId);
        Assert.Equal("opb: cluster-wide stop", Reason(set));
        Assert.Equal(tool, set.GetProperty("tool").GetString());
        Assert.Single(cluster, e => e.GetProperty("kind").GetString() == "operator/kill-switch.clear" && Target(e).GetProperty("switchId").GetString() == switchId);
        var verified = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit/verify?tenantId={Cluster}");
        Assert.True(verified.GetProperty("ok").GetBoolean(), verified.ToString());
        Assert.True(verified.GetProperty("checked").GetInt64() >= 2);

        // A tenant-limited auditor: its own tenant's operator events, never the cluster chain or another tenant's.
        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        var auditorId = "opb-auditor-" + Guid.NewGuid().ToString("N")[..6];
        var (_, auditorKey, auditorHash) = SecretTokens.Create(SecretTokens.OperatorPrefix, auditorId);
        await directory.UpsertAsync(new OperatorAccount(auditorId, [OperatorRoles.Auditor], [tenant], auditorHash, DateTimeOffset.UtcNow));
        using var limited = Host.Http(auditorKey);

        foreach (var path in new[] { $"/api/v1/audit?tenantId={Cluster}", $"/api/v1/audit/verify?tenantId={Cluster}", $"/api/v1/audit/export?format=jsonl&tenantId={Cluster}" })
        {
            var refused = await limited.GetAsync(path);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }

        var own = await Items(limited, "kind=operator/*&limit=1000");
        Assert.Contains(own, e => e.GetProperty("kind").GetString() == "operator/mode.set" && Reason(e) == "opb: tenant event");
        Assert.All(own, e => Assert.Equal(tenant, e.GetProperty("tenantId").GetString()));
        var exported = await limited.GetStringAsync("/api/v1/audit/export?format=jsonl&kind=operator/*");
        Assert.DoesNotContain(Cluster, exported);
        Assert.DoesNotContain(switchId, exported);

        // A kind filter that is neither exact nor a trailing-* prefix is bad input.
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/audit?kind=operator/*/set")).StatusCode);
    }

    [Fact]
    public async Task Approve_still_works_without_a_body_and_refuses_an_overlong_reason()
    {
        var tenant = "opc-" + Guid.NewGuid().ToString("N")[..8];
        await Host.EnsureTenantAsync(tenant);
        await Host.SetModeAsync(tenant, "support-desk", "read-write");
        var (bearer, _) = await Host.MintAsync(tenant, "opc-agent", scopes: ["server:support-desk:write"]);
        await using var client = await Host.ConnectAsync(bearer);
        using var admin = Host.OperatorHttp();

        async Task<string> OpenAsync(long amount) => RefusalAssert.Refused(await client.CallToolAsync("create_refund",
            new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = amount, ["reason"] = "requested" }),
            RefusalCodes.RequiresConfirmation).GetProperty("approval_id").GetString()!;

        var tooLong = await admin.PostAsJsonAsync($"/api/v1/approvals/{await OpenAsync(31)}/approve", new { reason = new string('x', 501) });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Equal("application/problem+json", tooLong.Content.Headers.ContentType?.MediaType);

        var bare = await admin.PostAsync($"/api/v1/approvals/{await OpenAsync(32)}/approve", null);
        Assert.Equal(HttpStatusCode.OK, bare.StatusCode);
        Assert.StartsWith("cpc_", (await bare.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("confirmationToken").GetString());
        await Host.SetModeAsync(tenant, "support-desk", "read-only");
    }

    [Fact]
    public async Task With_the_audit_store_down_protective_actions_work_and_permissive_ones_refuse_with_503_and_change_nothing()
    {
        SwitchableAuditStore? store = null;
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-opaudit-" + Guid.NewGuid().ToString("N")[..10]);
        await using var host = await ControlPlaneTestHost.StartAsync(dataDir, configureServices: services =>
            services.AddSingleton<IAuditStore>(_ => store = new SwitchableAuditStore(new SqliteAuditStore(Path.Combine(dataDir, "audit.db")))));
        using var admin = host.OperatorHttp();

        // Set up while the store works: a token to revoke, a server to remove, a switch to clear, an approval to decide.
        await host.SetModeAsync("demo", "support-desk", "read-write");
        var (bearer, tokenId) = await host.MintAsync("demo", "outage-agent", scopes: ["server:support-desk:read", "server:support-desk:write"]);
        await Ok(admin.PostAsJsonAsync("/api/v1/servers", new { id = "outage-up", tenantId = "demo", transport = "http", url = "http://127.0.0.1:9/mcp" }));
        var standing = (await Ok(admin.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "user", tenantId = "demo", userId = "outage-user", reason = "standing" })))
            .GetProperty("id").GetString()!;
        string approvalId, denyId;
        await using (var client = await host.ConnectAsync(bearer))
        {
            async Task<string> OpenAsync(long amount) => RefusalAssert.Refused(await client.CallToolAsync("create_refund",
                new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = amount, ["reason"] = "requested" }),
                RefusalCodes.RequiresConfirmation).GetProperty("approval_id").GetString()!;
            approvalId = await OpenAsync(9);
            denyId = await OpenAsync(10);
        }

        var tokensBefore = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/tokens")).GetProperty("items").GetArrayLength();
        store!.Down = true;

        // Permissive: refused with 503 AUDIT_UNAVAILABLE, and nothing changed.
        await Unavailable(admin.PostAsJsonAsync($"/api/v1/kill-switches/{standing}/clear", new { reason = "outage: try to clear" }));
        await Unavailable(admin.PostAsJsonAsync("/api/v1/tenants/demo/tokens", new { agentId = "outage-new", scopes = new[] { "server:support-desk:read" } }));
        await Unavailable(admin.PostAsJsonAsync("/api/v1/tenants", new { id = "outage-tenant", name = "x" }));
        await Unavailable(admin.PostAsJsonAsync("/api/v1/servers", new { id = "outage-new-up", transport = "http", url = "http://127.0.0.1:9/mcp" }));
        await Unavailable(admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/create_refund", new { classification = "read", tenantId = "demo", reason = "outage" }));
        await Unavailable(admin.PostAsync($"/api/v1/approvals/{approvalId}/approve", null));

        Assert.Contains(await ActiveSwitchIds(admin), id => id == standing);
        Assert.Equal(tokensBefore, (await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/tokens")).GetProperty("items").GetArrayLength());
        Assert.DoesNotContain("outage-tenant", await admin.GetStringAsync("/api/v1/tenants"));
        Assert.DoesNotContain("outage-new-up", await admin.GetStringAsync("/api/v1/servers"));
        var approval = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/approvals?status=pending&tenantId=demo")).GetProperty("items").EnumerateArray();
        Assert.Contains(approval, a => a.GetProperty("id").GetString() == approvalId);
        var servers = await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/servers");
        var desk = servers.GetProperty("items").EnumerateArray().Single(s => s.GetProperty("serverId").GetString() == "support-desk");
        Assert.Equal("action", desk.GetProperty("tools").EnumerateArray().Single(t => t.GetProperty("name").GetString() == "create_refund").GetProperty("classification").GetString());

        // Protective: applied at once, audit or not.
        var killed = (await Ok(admin.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = "demo", agentId = "outage-agent", reason = "outage: stop it" })))
            .GetProperty("id").GetString()!;
        Assert.Contains(await ActiveSwitchIds(admin), id => id == killed);
        await Ok(admin.DeleteAsync($"/api/v1/tenants/demo/tokens/{tokenId}"));
        Assert.Equal("revoked", (await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/tokens")).GetProperty("items").EnumerateArray()
            .Single(t => t.GetProperty("id").GetString() == tokenId).GetProperty("status").GetString());
        await Ok(admin.PutAsJsonAsync("/api/v1/tenants/demo/servers/support-desk/mode", new { mode = "read-only", reason = "outage: lock down" }));
        await Ok(admin.DeleteAsync("/api/v1/servers/outage-up"));
        Assert.Equal("denied", (await Ok(admin.PostAsJsonAsync($"/api/v1/approvals/{denyId}/deny", new { reason = "outage: no refunds now" }))).GetProperty("status").GetString());
        Assert.DoesNotContain("outage-up", await admin.GetStringAsync("/api/v1/servers"));
        await using (var client = await host.ConnectAsync(host.Credentials.AgentToken))
        {
            // The lockdown holds for agents (refused before anything runs, so no record is needed).
            RefusalAssert.Refused(await client.CallToolAsync("create_refund",
                new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 9, ["reason"] = "requested" }), RefusalCodes.ReadOnly);
        }

        // Back up: the protective records arrive (retried by the writer), once each; the refused permissive ones never existed.
        store.Down = false;
        Func<JsonElement, bool>[] owed =
        [
            e => e.GetProperty("kind").GetString() == "operator/kill-switch.set" && Reason(e) == "outage: stop it",
            e => e.GetProperty("kind").GetString() == "operator/token.revoke" && e.GetProperty("tokenId").GetString() == tokenId,
            e => e.GetProperty("kind").GetString() == "operator/mode.set" && Reason(e) == "outage: lock down",
            e => e.GetProperty("kind").GetString() == "operator/server.remove" && e.GetProperty("server").GetString() == "outage-up",
            e => e.GetProperty("kind").GetString() == "approval/denied" && e.GetProperty("detail").GetString()!.Contains("outage: no refunds now", StringComparison.Ordinal),
        ];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JsonElement[] events;
        do
        {
            await Task.Delay(500);
            events = [.. await Items(admin, "tenantId=demo&kind=operator/*&limit=200"), .. await Items(admin, "tenantId=demo&kind=approval/denied")];
        }
        while (!owed.All(o => events.Any(o)) && DateTime.UtcNow < deadline);

        Assert.Equal("outage: stop it", Reason(Assert.Single(events, e => e.GetProperty("kind").GetString() == "operator/kill-switch.set" && Target(e).GetProperty("switchId").GetString() == killed)));
        Assert.Single(events, e => e.GetProperty("kind").GetString() == "operator/token.revoke" && e.GetProperty("tokenId").GetString() == tokenId);
        Assert.Equal("outage: lock down", Reason(Assert.Single(events, e => e.GetProperty("kind").GetString() == "operator/mode.set" && Target(e).GetProperty("mode").GetString() == "read-only")));
        Assert.Single(events, e => e.GetProperty("kind").GetString() == "operator/server.remove" && e.GetProperty("server").GetString() == "outage-up");
        Assert.Single(events, e => e.GetProperty("kind").GetString() == "approval/denied" && e.GetProperty("confirmationId").GetString() == denyId);
        Assert.DoesNotContain(events, e => e.GetProperty("kind").GetString() == "operator/kill-switch.clear");
        Assert.DoesNotContain(events, e => e.GetProperty("kind").GetString() == "operator/tool-classification.set");
        Assert.DoesNotContain(events, e => e.GetProperty("kind").GetString() == "operator/token.mint" && e.GetProperty("agentId").GetString() == "outage-new");
        Assert.Empty(await Items(admin, "tenantId=demo&kind=approval/approved"));
        var verified = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify?tenantId=demo");
        Assert.True(verified.GetProperty("ok").GetBoolean(), verified.ToString());

        // And the permissive actions work again.
        await Ok(admin.PostAsJsonAsync($"/api/v1/kill-switches/{standing}/clear", new { reason = "outage over" }));
        await Ok(admin.PostAsync($"/api/v1/approvals/{approvalId}/approve", null));
    }

    [Fact]
    public async Task A_permissive_action_that_fails_after_its_record_is_durable_is_recorded_as_failed_too()
    {
        var tenant = "opd-" + Guid.NewGuid().ToString("N")[..8];
        await Host.EnsureTenantAsync(tenant);
        var auditor = Host.Services.GetRequiredService<OperatorAuditor>();
        var by = (await Host.Services.GetRequiredService<OperatorService>().FindAsync("admin"))!;
        var action = new OperatorAction("mode.set", tenant, OperatorAction.Targets(("serverId", "support-desk"), ("mode", "read-write")), "opd: grain failed");

        await Assert.ThrowsAsync<TimeoutException>(() => auditor.PermissiveAsync<bool>(by, action, () => throw new TimeoutException("grain call timed out")));

        // The durable record of the attempt, then (retried in the background) the record that it did not take effect.
        using var admin = Host.OperatorHttp();
        JsonElement[] events = [];
        for (var wait = 0; wait < 60 && events.Length < 2; wait++)
        {
            events = await Items(admin, $"tenantId={tenant}&kind=operator/mode.set");
            if (events.Length < 2) await Task.Delay(500);
        }

        Assert.Equal(2, events.Length);
        var failed = Assert.Single(events, e => e.GetProperty("outcome").GetString() == "error");
        Assert.Equal("TimeoutException", failed.GetProperty("errorType").GetString());
        Assert.Equal(events.Single(e => e.GetProperty("outcome").GetString() == "success").GetProperty("id").GetString() + ":failed", failed.GetProperty("id").GetString());
        Assert.Equal("opd: grain failed", Reason(failed));
    }

    private static async Task Unavailable(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(RefusalCodes.AuditUnavailable, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
        Assert.NotNull(response.Headers.RetryAfter);
    }

    private static async Task<JsonElement> Ok(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: {(int)response.StatusCode} {body}");
        return body.Length == 0 ? default : JsonDocument.Parse(body).RootElement.Clone();
    }

    private static async Task<string[]> ActiveSwitchIds(HttpClient admin) =>
        [.. (await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches")).GetProperty("items").EnumerateArray().Select(s => s.GetProperty("id").GetString()!)];

    private static async Task<JsonElement[]> Items(HttpClient http, string query)
    {
        var response = await http.GetAsync("/api/v1/audit?" + query);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {body}");
        return [.. JsonDocument.Parse(body).RootElement.GetProperty("items").EnumerateArray().Select(e => e.Clone())];
    }

    private static JsonElement Target(JsonElement record) => record.GetProperty("arguments").GetProperty("target");

    private static string? Reason(JsonElement record) =>
        record.GetProperty("arguments").TryGetProperty("reason", out var reason) ? reason.GetString() : null;
}
