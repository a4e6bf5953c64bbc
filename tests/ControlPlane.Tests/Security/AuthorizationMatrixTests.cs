using System.Net;
using System.Net.Http.Json;
using System.Text;
using ControlPlane.Approvals;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Tests.Infrastructure;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Security;

/// <summary>
/// Every operator API endpoint, asked by every role (all-tenant and tenant-limited) for its own tenant and
/// another's, anonymously and with an agent token. The endpoints come from the running app, so a new
/// endpoint without a row here fails the test until someone decides who may call it.
/// </summary>
[Collection(SecurityHostCollection.Name)]
public sealed class AuthorizationMatrixTests(SecurityHostFixture fixture)
{
    private const string Own = "mx-a";
    private const string Other = "mx-b";

    private ControlPlaneTestHost Host => fixture.Host;

    private sealed record Case(string Name, string Role, Reach Reach, HttpStatusCode Success, Func<string, Task<HttpRequestMessage>> Build,
        HttpStatusCode OtherTenant = HttpStatusCode.Forbidden);

    private sealed record Principal(string Name, string Role, bool Limited, HttpClient Http);

    private int _unique;

    private string Unique(string prefix) => $"{prefix}-{Interlocked.Increment(ref _unique)}";

    private Dictionary<string, Case[]> Rows() => new(StringComparer.Ordinal)
    {
        ["POST /api/v1/kill-switches"] =
        [
            new("kill an agent of a tenant", OperatorRoles.Operator, Reach.Tenant, HttpStatusCode.Created,
                t => Json(HttpMethod.Post, "/api/v1/kill-switches", new { scope = "agent", tenantId = t, agentId = Unique("mx-agent"), reason = "matrix" })),
            new("kill a tool in every tenant", OperatorRoles.Operator, Reach.AllTenants, HttpStatusCode.Created,
                _ => Json(HttpMethod.Post, "/api/v1/kill-switches", new { scope = "tool", serverId = "lab", toolName = Unique("mx-tool"), reason = "matrix" })),
        ],
        ["GET /api/v1/kill-switches"] = [new("list switches", OperatorRoles.Viewer, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/kill-switches"))],
        ["POST /api/v1/kill-switches/{id}/clear"] =
        [
            new("clear a tenant's switch", OperatorRoles.Operator, Reach.Tenant, HttpStatusCode.OK, async t =>
            {
                var id = await Host.KillAsync(new { scope = "agent", tenantId = t, agentId = Unique("mx-clear"), reason = "matrix setup" });
                return await Json(HttpMethod.Post, $"/api/v1/kill-switches/{id}/clear", new { reason = "matrix" });
            }),
        ],
        ["POST /api/v1/tenants"] = [new("create a tenant", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.Created,
            _ => Json(HttpMethod.Post, "/api/v1/tenants", new { id = Unique("mx-new"), name = "matrix" }))],
        ["GET /api/v1/cluster"] = [new("see the cluster's silos and what each enforces", OperatorRoles.Viewer, Reach.AllTenants, HttpStatusCode.OK, _ => Get("/api/v1/cluster"))],
        ["GET /api/v1/tenants"] = [new("list tenants", OperatorRoles.Viewer, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/tenants"))],
        ["POST /api/v1/tenants/{tenantId}/tokens"] = [new("mint a token", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.Created,
            t => Json(HttpMethod.Post, $"/api/v1/tenants/{t}/tokens", new { agentId = Unique("mx-agent"), scopes = new[] { "server:lab:read" } }))],
        ["GET /api/v1/tenants/{tenantId}/tokens"] = [new("list tokens", OperatorRoles.Viewer, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/tenants/{t}/tokens"))],
        ["DELETE /api/v1/tenants/{tenantId}/tokens/{id}"] =
        [
            new("revoke a token", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK, async t =>
            {
                var (_, id) = await Host.MintAsync(t, Unique("mx-revoke"), scopes: ["server:lab:read"]);
                return new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/tenants/{t}/tokens/{id}");
            }),
        ],
        ["GET /api/v1/tenants/{tenantId}/servers"] = [new("list servers", OperatorRoles.Viewer, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/tenants/{t}/servers"))],
        ["PUT /api/v1/tenants/{tenantId}/servers/{serverId}/mode"] =
        [
            new("make a server read-only", OperatorRoles.Operator, Reach.Tenant, HttpStatusCode.OK,
                t => Json(HttpMethod.Put, $"/api/v1/tenants/{t}/servers/lab/mode", new { mode = "read-only", reason = "matrix" })),
            new("make a server read-write", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK,
                t => Json(HttpMethod.Put, $"/api/v1/tenants/{t}/servers/lab/mode", new { mode = "read-write", reason = "matrix" })),
        ],
        ["PUT /api/v1/servers/{serverId}/tools/{toolName}"] =
        [
            new("classify a tool for a tenant", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK,
                t => Json(HttpMethod.Put, "/api/v1/servers/lab/tools/flaky", new { classification = "read", reason = "matrix", tenantId = t })),
            new("classify a tool for every tenant", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.OK,
                _ => Json(HttpMethod.Put, "/api/v1/servers/lab/tools/flaky", new { classification = "read", reason = "matrix" })),
        ],
        ["PUT /api/v1/servers/{serverId}/tools/{toolName}/schema"] =
        [
            new("tighten a schema for a tenant", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK,
                t => Json(HttpMethod.Put, "/api/v1/servers/lab/tools/flaky/schema", new { schema = new { type = "object" }, reason = "matrix", tenantId = t })),
            new("tighten a schema for every tenant", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.OK,
                _ => Json(HttpMethod.Put, "/api/v1/servers/lab/tools/flaky/schema", new { schema = new { type = "object" }, reason = "matrix" })),
        ],
        ["PUT /api/v1/servers/{serverId}/tools/{toolName}/projection"] = [new("project a tool's results", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.OK,
            _ => Json(HttpMethod.Put, "/api/v1/servers/lab/tools/flaky/projection", new { fields = new[] { "/ok" }, reason = "matrix" }))],
        ["PUT /api/v1/tenants/{tenantId}/audit-retention"] = [new("set audit retention", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK,
            t => Json(HttpMethod.Put, $"/api/v1/tenants/{t}/audit-retention", new { days = 90 }))],
        ["PUT /api/v1/tenants/{tenantId}/rate-limits"] = [new("set a rate limit", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK,
            t => Json(HttpMethod.Put, $"/api/v1/tenants/{t}/rate-limits", new { scope = "agent", agentId = "mx-limited", capacity = 100, refillPerSecond = 10 }))],
        ["GET /api/v1/tenants/{tenantId}/rate-limits"] = [new("list rate limits", OperatorRoles.Viewer, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/tenants/{t}/rate-limits"))],
        ["GET /api/v1/approvals"] =
        [
            new("list approvals", OperatorRoles.Viewer, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/approvals")),
            new("list a tenant's approvals", OperatorRoles.Viewer, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/approvals?status=pending&tenantId={t}")),
        ],
        ["POST /api/v1/approvals/{id}/approve"] = [new("approve", OperatorRoles.Approver, Reach.Tenant, HttpStatusCode.OK,
            async t => new HttpRequestMessage(HttpMethod.Post, $"/api/v1/approvals/{await OpenApprovalAsync(t)}/approve"), OtherTenant: HttpStatusCode.NotFound)],
        ["POST /api/v1/approvals/{id}/deny"] = [new("deny", OperatorRoles.Approver, Reach.Tenant, HttpStatusCode.OK,
            async t => await Json(HttpMethod.Post, $"/api/v1/approvals/{await OpenApprovalAsync(t)}/deny", new { reason = "matrix" }), OtherTenant: HttpStatusCode.NotFound)],
        ["GET /api/v1/audit"] =
        [
            new("read the audit", OperatorRoles.Auditor, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/audit?limit=1000")),
            new("read a tenant's audit", OperatorRoles.Auditor, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/audit?tenantId={t}")),
            new("read the cluster chain of operator actions", OperatorRoles.Auditor, Reach.AllTenants, HttpStatusCode.OK, _ => Get("/api/v1/audit?tenantId=_cluster&kind=operator/*")),
        ],
        ["GET /api/v1/audit/export"] =
        [
            new("export the audit", OperatorRoles.Auditor, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/audit/export?format=jsonl")),
            new("export a tenant's audit", OperatorRoles.Auditor, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/audit/export?format=csv&tenantId={t}")),
            new("export the cluster chain", OperatorRoles.Auditor, Reach.AllTenants, HttpStatusCode.OK, _ => Get("/api/v1/audit/export?format=jsonl&tenantId=_cluster")),
        ],
        ["GET /api/v1/drills"] = [new("list drills", OperatorRoles.Viewer, Reach.NoTenant, HttpStatusCode.OK, _ => Get("/api/v1/drills"))],
        ["POST /api/v1/drills"] =
        [
            new("drill a session switch", OperatorRoles.Operator, Reach.NoTenant, HttpStatusCode.OK,
                _ => Json(HttpMethod.Post, "/api/v1/drills", new { level = "session" })),
            new("drill the global switch", OperatorRoles.Operator, Reach.AllTenants, HttpStatusCode.OK,
                _ => Json(HttpMethod.Post, "/api/v1/drills", new { level = "global", confirmGlobal = true })),
        ],
        ["GET /api/v1/audit/verify"] =
        [
            new("verify a tenant's chain", OperatorRoles.Auditor, Reach.Tenant, HttpStatusCode.OK, t => Get($"/api/v1/audit/verify?tenantId={t}")),
            new("verify the cluster chain", OperatorRoles.Auditor, Reach.AllTenants, HttpStatusCode.OK, _ => Get("/api/v1/audit/verify?tenantId=_cluster")),
        ],

        // Upstream servers (registered before they are listed, so the listing has one of the other tenant's).
        ["POST /api/v1/servers"] =
        [
            new("register a tenant's upstream", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.Created,
                t => Json(HttpMethod.Post, "/api/v1/servers", new { id = Unique("mx-up"), tenantId = t, transport = "http", url = "http://127.0.0.1:9/mcp" })),
            new("register an upstream for every tenant", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.Created,
                _ => Json(HttpMethod.Post, "/api/v1/servers", new { id = Unique("mx-up"), transport = "http", url = "http://127.0.0.1:9/mcp" })),
        ],
        ["PUT /api/v1/servers/{id}/trust-annotations"] = [new("trust a tenant's upstream's own tool annotations", OperatorRoles.Admin, Reach.AllTenants, HttpStatusCode.OK, async t =>
        {
            var id = Unique("mx-up");
            using var admin = Host.OperatorHttp();
            var registered = await admin.PostAsJsonAsync("/api/v1/servers", new { id, tenantId = t, transport = "http", url = "http://127.0.0.1:9/mcp" });
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
            return await Json(HttpMethod.Put, $"/api/v1/servers/{id}/trust-annotations", new { trust = true, reason = "matrix", tenantId = t });
        })],
        ["GET /api/v1/servers"] = [new("list upstreams", OperatorRoles.Viewer, Reach.Listing, HttpStatusCode.OK, _ => Get("/api/v1/servers"))],
        ["DELETE /api/v1/servers/{id}"] = [new("remove a tenant's upstream", OperatorRoles.Admin, Reach.Tenant, HttpStatusCode.OK, async t =>
        {
            var id = Unique("mx-up");
            using var admin = Host.OperatorHttp();
            var registered = await admin.PostAsJsonAsync("/api/v1/servers", new { id, tenantId = t, transport = "http", url = "http://127.0.0.1:9/mcp" });
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
            return new HttpRequestMessage(HttpMethod.Delete, $"/api/v1/servers/{id}");
        })],
    };

    [Fact]
    public void Every_operator_api_endpoint_has_a_row_in_the_matrix()
    {
        var endpoints = ApiEndpoints();
        var rows = Rows();
        var missing = endpoints.Except(rows.Keys).ToList();
        var stale = rows.Keys.Except(endpoints).ToList();
        Assert.True(missing.Count == 0,
            $"These /api/v1 endpoints have no authorization row: {string.Join("; ", missing)}. Add a row to {nameof(AuthorizationMatrixTests)}.{nameof(Rows)} saying which role and tenant reach each needs.");
        Assert.True(stale.Count == 0, $"These rows name endpoints the app no longer maps: {string.Join("; ", stale)}.");
    }

    [Fact]
    public async Task Every_role_gets_exactly_what_its_role_and_tenants_allow_on_every_endpoint()
    {
        await Host.EnsureTenantAsync(Own);
        await Host.EnsureTenantAsync(Other);

        // Something of the other tenant in every listing, so a leak would show.
        await Host.KillAsync(new { scope = "agent", tenantId = Other, agentId = "mx-visible", reason = "matrix: other tenant's switch" });
        // And a cluster-wide operator event (a tool no server has), which no limited operator may read.
        await Host.KillAsync(new { scope = "tool", serverId = "mx-nowhere", toolName = "mx-nothing", reason = "matrix: a cluster-wide event" });
        await OpenApprovalAsync(Other);
        using (var admin = Host.OperatorHttp())
        {
            var decided = await admin.PostAsync($"/api/v1/approvals/{await OpenApprovalAsync(Other)}/deny", JsonContent.Create(new { reason = "audit record for the other tenant" }));
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }

        var principals = new List<Principal>();
        foreach (var role in OperatorRoles.All)
        {
            principals.Add(await PrincipalAsync(role, limited: false));
            principals.Add(await PrincipalAsync(role, limited: true));
        }

        var (agentToken, _) = await Host.MintAsync(Own, "mx-agent-caller", scopes: ["server:lab:read"]);
        using var anonymous = Host.Http();
        using var agent = Host.Http(agentToken);

        var failures = new List<string>();
        var checkedCells = 0;
        foreach (var (endpoint, cases) in Rows())
        {
            foreach (var @case in cases)
            {
                foreach (var tenant in @case.Reach == Reach.Tenant ? new[] { Own, Other } : [Own])
                {
                    foreach (var (name, client) in new[] { ("anonymous", anonymous), ("agent token", agent) })
                    {
                        var status = (await client.SendAsync(await @case.Build(tenant))).StatusCode;
                        checkedCells++;
                        if (status != HttpStatusCode.Unauthorized) failures.Add($"{endpoint} [{@case.Name}] as {name}: {(int)status}, expected 401");
                    }

                    foreach (var principal in principals)
                    {
                        var expected = Expected(principal, @case, tenant);
                        var response = await principal.Http.SendAsync(await @case.Build(tenant));
                        var body = await response.Content.ReadAsStringAsync();
                        checkedCells++;
                        if (response.StatusCode != expected)
                        {
                            failures.Add($"{endpoint} [{@case.Name}] tenant {tenant} as {principal.Name}: {(int)response.StatusCode}, expected {(int)expected}: {Shorten(body)}");
                        }
                        else if ((int)expected >= 400 && response.Content.Headers.ContentType?.MediaType != "application/problem+json")
                        {
                            failures.Add($"{endpoint} [{@case.Name}] as {principal.Name}: {(int)expected} without problem+json");
                        }
                        else if (@case.Reach == Reach.Listing && expected == HttpStatusCode.OK && principal.Limited && body.Contains($"\"{Other}\"", StringComparison.Ordinal))
                        {
                            failures.Add($"{endpoint} [{@case.Name}] as {principal.Name}: lists tenant {Other}'s items");
                        }
                        else if (@case.Reach == Reach.Listing && expected == HttpStatusCode.OK && principal.Limited && body.Contains("_cluster", StringComparison.Ordinal))
                        {
                            failures.Add($"{endpoint} [{@case.Name}] as {principal.Name}: lists cluster-wide operator events");
                        }
                        else if (@case.Reach == Reach.Listing && expected == HttpStatusCode.OK && !principal.Limited && !body.Contains(Other, StringComparison.Ordinal))
                        {
                            failures.Add($"{endpoint} [{@case.Name}] as {principal.Name}: an all-tenant operator should see {Other}'s items (is the leak check blind?)");
                        }
                    }
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {checkedCells} cells wrong:\n" + string.Join("\n", failures));
        Assert.True(checkedCells > 300, $"Only {checkedCells} cells checked.");

        await ClearMatrixSwitchesAsync();
    }

    /// <summary>The policy, stated once: admin implies every role; a limited operator reaches only its own tenant.</summary>
    private static HttpStatusCode Expected(Principal principal, Case @case, string tenant)
    {
        if (principal.Role != OperatorRoles.Admin && principal.Role != @case.Role) return HttpStatusCode.Forbidden;
        if (principal.Limited && @case.Reach == Reach.AllTenants) return HttpStatusCode.Forbidden;
        if (principal.Limited && @case.Reach == Reach.Tenant && tenant != Own) return @case.OtherTenant;
        return @case.Success;
    }

    private HashSet<string> ApiEndpoints() =>
    [
        .. Host.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } raw && raw.StartsWith("/api/v1", StringComparison.Ordinal))
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["ANY"])
                .Select(method => $"{method} {e.RoutePattern.RawText!.TrimEnd('/')}")),
    ];

    private async Task<Principal> PrincipalAsync(string role, bool limited)
    {
        var id = $"mx-{role}-{(limited ? "limited" : "all")}";
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount(id, [role], limited ? [Own] : [], hash, DateTimeOffset.UtcNow));
        return new Principal(id, role, limited, Host.Http(key));
    }

    /// <summary>An open approval request in the tenant, as the confirmation step would open it.</summary>
    private async Task<string> OpenApprovalAsync(string tenantId)
    {
        var grains = Host.Services.GetRequiredService<IGrainFactory>();
        var id = Unique("mx-approval");
        var now = DateTimeOffset.UtcNow;
        await grains.GetGrain<IApprovalGrain>(id).OpenAsync(new ApprovalRequest(id, tenantId, "mx-agent", "mx-user", null, "mx-token", "lab", "echo_action",
            """{"text":"matrix"}""", "hash-" + id, now, now.AddMinutes(30), TimeSpan.FromMinutes(5)));
        await grains.GetGrain<IApprovalIndexGrain>(tenantId).AddAsync(id, "dedup-" + id);
        return id;
    }

    private async Task ClearMatrixSwitchesAsync()
    {
        using var admin = Host.OperatorHttp();
        var active = await admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/kill-switches");
        foreach (var item in active.GetProperty("items").EnumerateArray())
        {
            var reason = item.GetProperty("reason").GetString() ?? "";
            if (reason.StartsWith("matrix", StringComparison.Ordinal)) await Host.ClearAsync(item.GetProperty("id").GetString()!);
        }
    }

    private static Task<HttpRequestMessage> Get(string path) => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, path));

    private static Task<HttpRequestMessage> Json(HttpMethod method, string path, object body) =>
        Task.FromResult(new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) });

    private static string Shorten(string body) => body.Length <= 300 ? body : body[..300] + "…";
}
