using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>Roles separate viewing from flipping; a tenant-limited operator never reaches another tenant.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class OperatorAuthorizationTests(EmbeddedHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    private async Task<HttpClient> OperatorAsync(string id, string[] roles, string[] tenants)
    {
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount(id, roles, tenants, hash, DateTimeOffset.UtcNow));
        return Host.Http(key);
    }

    [Fact]
    public async Task A_viewer_sees_switches_but_cannot_flip_mint_or_create()
    {
        using var viewer = await OperatorAsync("viewer-1", [OperatorRoles.Viewer], []);

        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/v1/kill-switches")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/v1/tenants/demo/tokens")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "global", reason = "viewer tries" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/v1/tenants", new { id = "viewer-made", name = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PostAsJsonAsync("/api/v1/tenants/demo/tokens", new { agentId = "a", scopes = Array.Empty<string>() })).StatusCode);

        using var admin = Host.OperatorHttp();
        var active = await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
        Assert.DoesNotContain(active.GetProperty("items").EnumerateArray(), s => s.GetProperty("reason").GetString() == "viewer tries");
    }

    [Fact]
    public async Task A_tenant_limited_operator_acts_only_inside_its_tenant()
    {
        await Host.EnsureTenantAsync("acme");
        using var acmeOps = await OperatorAsync("acme-oncall", [OperatorRoles.Operator, OperatorRoles.Viewer], ["acme"]);
        using var admin = Host.OperatorHttp();

        var own = await acmeOps.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "tenant", tenantId = "acme", reason = "acme incident" });
        Assert.Equal(HttpStatusCode.Created, own.StatusCode);
        var ownId = (await own.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

        var serverInOwnTenant = await acmeOps.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "server", serverId = "support-desk", tenantId = "acme", reason = "acme only" });
        Assert.Equal(HttpStatusCode.Created, serverInOwnTenant.StatusCode);
        var serverId = (await serverInOwnTenant.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        try
        {

            foreach (var foreign in new object[]
            {
                new { scope = "tenant", tenantId = "demo", reason = "not yours" },
                new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "not yours" },
                new { scope = "global", reason = "not yours" },
                new { scope = "server", serverId = "support-desk", reason = "every tenant" },
                new { scope = "tool", serverId = "support-desk", toolName = "create_refund", reason = "every tenant" },
            })
            {
                Assert.Equal(HttpStatusCode.Forbidden, (await acmeOps.PostAsJsonAsync("/api/v1/kill-switches", foreign)).StatusCode);
            }

            // A demo session is another tenant's: the acme operator may not kill it.
            await using (var demoClient = await Host.ConnectAsync())
            {
                await demoClient.ListToolsAsync();
                var sessionKill = await acmeOps.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "session", sessionId = demoClient.SessionId, reason = "not yours" });
                Assert.Equal(HttpStatusCode.Forbidden, sessionKill.StatusCode);
            }

            // The admin's global view has a demo switch; the acme operator's list never shows it, and it cannot clear it.
            var demoKill = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "someone-else", reason = "demo only" });
            try
            {
                var visible = (await acmeOps.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches")).GetProperty("items").EnumerateArray()
                    .Select(s => s.GetProperty("tenantId").GetString()).ToList();
                Assert.NotEmpty(visible);
                Assert.All(visible, t => Assert.Equal("acme", t));
                Assert.Equal(HttpStatusCode.Forbidden, (await acmeOps.PostAsJsonAsync($"/api/v1/kill-switches/{demoKill}/clear", new { reason = "not yours" })).StatusCode);
            }
            finally
            {
                await Host.ClearAsync(demoKill);
            }

        }
        finally
        {
            Assert.Equal(HttpStatusCode.OK, (await acmeOps.PostAsJsonAsync($"/api/v1/kill-switches/{ownId}/clear", new { reason = "resolved" })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await acmeOps.PostAsJsonAsync($"/api/v1/kill-switches/{serverId}/clear", new { reason = "resolved" })).StatusCode);
        }
    }

    [Fact]
    public async Task A_tenant_limited_admin_cannot_see_or_touch_another_tenants_tokens()
    {
        await Host.EnsureTenantAsync("acme");
        using var acmeAdmin = await OperatorAsync("acme-admin", [OperatorRoles.Admin], ["acme"]);
        var (_, demoTokenId) = await Host.MintAsync("demo", "isolation-agent");

        Assert.Equal(HttpStatusCode.Forbidden, (await acmeAdmin.GetAsync("/api/v1/tenants/demo/tokens")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await acmeAdmin.PostAsJsonAsync("/api/v1/tenants/demo/tokens", new { agentId = "intruder", scopes = new[] { "server:support-desk:write" } })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await acmeAdmin.DeleteAsync($"/api/v1/tenants/demo/tokens/{demoTokenId}")).StatusCode);

        // Naming the demo token under its own tenant does not find it either.
        Assert.Equal(HttpStatusCode.NotFound, (await acmeAdmin.DeleteAsync($"/api/v1/tenants/acme/tokens/{demoTokenId}")).StatusCode);

        var tenants = (await acmeAdmin.GetFromJsonAsync<JsonElement>("/api/v1/tenants")).GetProperty("items").EnumerateArray().Select(t => t.GetProperty("id").GetString()).ToList();
        Assert.Equal(["acme"], tenants);

        using var admin = Host.OperatorHttp();
        var demoTokens = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/tokens")).GetProperty("items").EnumerateArray();
        var token = Assert.Single(demoTokens, t => t.GetProperty("id").GetString() == demoTokenId);
        Assert.Equal("active", token.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Minting_validates_scopes_and_lifetime_and_never_lists_secrets()
    {
        using var admin = Host.OperatorHttp();
        var bad = await admin.PostAsJsonAsync("/api/v1/tenants/demo/tokens", new { agentId = "a", scopes = new[] { "server:support-desk:delete", "everything" }, expiresInSeconds = 5 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var problem = await bad.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(problem.GetProperty("errors").TryGetProperty("scopes", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("expiresInSeconds", out _));

        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsJsonAsync("/api/v1/tenants/nope/tokens", new { agentId = "a", scopes = new[] { "server:x:read" } })).StatusCode);

        var (secret, _) = await Host.MintAsync("demo", "listing-agent", scopes: ["tool:support-desk/list_orders"]);
        var listing = await admin.GetStringAsync("/api/v1/tenants/demo/tokens");
        Assert.DoesNotContain(secret, listing);
        Assert.DoesNotContain(secret[^43..], listing);
        Assert.DoesNotContain("hash", listing, StringComparison.OrdinalIgnoreCase);
    }
}
