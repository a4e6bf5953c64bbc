using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// One server id registered globally and once more for each of two tenants, each registration a real filesystem
/// server process with a root of its own (standing in for a credential of its own): every tenant reaches its own
/// registration, or the global one when it has none, and never another tenant's.
/// </summary>
[Collection(UpstreamHostCollection.Name)]
public sealed class UpstreamTenantRegistrationTests(UpstreamHostFixture fixture)
{
    private const string Server = "tfs";
    private const string TenantA = "tfs-a";
    private const string TenantB = "tfs-b";
    private const string TenantC = "tfs-c";

    private ControlPlaneTestHost Host => fixture.Host;

    [UpstreamFact]
    public async Task Each_tenant_reaches_its_own_registration_of_a_server_id_and_the_others_the_global_one()
    {
        var roots = new Dictionary<string, string>();
        foreach (var name in new[] { "global", TenantA, TenantB })
        {
            var root = Directory.CreateTempSubdirectory($"cp-{name}-").FullName;
            await File.WriteAllTextAsync(Path.Combine(root, "owner.txt"), $"this root belongs to {name}");
            roots[name] = root;
        }

        foreach (var tenant in new[] { TenantA, TenantB, TenantC }) await Host.EnsureTenantAsync(tenant);
        var marker = "tfs-a-credential-7f3e9c";
        await Host.RegisterNodeAsync(Server, UpstreamPackages.Filesystem, [roots["global"]], trustAnnotations: true);
        await Host.RegisterNodeAsync(Server, UpstreamPackages.Filesystem, [roots[TenantA]], env: new() { ["TFS_CREDENTIAL"] = marker }, tenantId: TenantA, trustAnnotations: true);
        await Host.RegisterNodeAsync(Server, UpstreamPackages.Filesystem, [roots[TenantB]], tenantId: TenantB, trustAnnotations: true);

        // Three registrations of one id, three processes.
        Assert.Equal(3, Host.Services.GetRequiredService<ControlPlane.Upstreams.UpstreamGateway>().List().Count(v => v.Id == Server && v.Status == "running"));

        var clients = new Dictionary<string, McpClient>();
        try
        {
            foreach (var tenant in new[] { TenantA, TenantB, TenantC })
            {
                var (token, _) = await Host.MintAsync(tenant, $"{tenant}-agent", scopes: [$"server:{Server}:read"]);
                clients[tenant] = await Host.ConnectAsync(token);
            }

            // Each tenant's process has its own root alone: A reads A's file and cannot read B's or the global one.
            await AssertReachesAsync(clients[TenantA], roots, own: TenantA);
            await AssertReachesAsync(clients[TenantB], roots, own: TenantB);
            await AssertReachesAsync(clients[TenantC], roots, own: "global");

            // The same on the server's own endpoint, under its own names.
            var (tokenA, _) = await Host.MintAsync(TenantA, "tfs-a-own", scopes: [$"server:{Server}:read"]);
            await using (var own = await Host.ConnectAsync(tokenA, $"/mcp/{Server}"))
            {
                var allowed = RefusalAssert.Text(await own.CallToolAsync("list_allowed_directories"));
                Assert.Contains(Path.GetFileName(roots[TenantA]), allowed, StringComparison.Ordinal);
                Assert.DoesNotContain(Path.GetFileName(roots[TenantB]), allowed, StringComparison.Ordinal);
            }

            await AssertOperatorViewsAsync(marker);

            // A server switch limited to tenant A stops A's calls and A's process only.
            var switchId = await Host.KillAsync(new { scope = "server", serverId = Server, tenantId = TenantA, reason = "tenant A's credential leaked" });
            RefusalAssert.Refused(await clients[TenantA].CallToolAsync($"{Server}__list_allowed_directories"), RefusalCodes.Killed);
            await Eventually.TrueAsync(() => Host.Upstream(Server, TenantA)?.Status == "killed", TimeSpan.FromSeconds(60), "tenant A's process to be killed");
            Assert.Equal("running", Host.Upstream(Server)?.Status);
            Assert.Equal("running", Host.Upstream(Server, TenantB)?.Status);
            await AssertReachesAsync(clients[TenantB], roots, own: TenantB);
            await AssertReachesAsync(clients[TenantC], roots, own: "global");
            await Host.ClearAsync(switchId);
            await Host.WaitForUpstreamAsync(Server, tenantId: TenantA);
            await AssertReachesAsync(clients[TenantA], roots, own: TenantA);

            // Without a tenant, a server switch stops every registration of the id.
            var everyone = await Host.KillAsync(new { scope = "server", serverId = Server, reason = "all of tfs" });
            foreach (var client in clients.Values)
            {
                RefusalAssert.Refused(await client.CallToolAsync($"{Server}__list_allowed_directories"), RefusalCodes.Killed);
            }

            await Eventually.TrueAsync(() => Host.Services.GetRequiredService<ControlPlane.Upstreams.UpstreamGateway>().List().Where(v => v.Id == Server).All(v => v.Status == "killed"),
                TimeSpan.FromSeconds(60), "every registration's process to be killed");
            await Host.ClearAsync(everyone);
            foreach (var tenant in new string?[] { null, TenantA, TenantB }) await Host.WaitForUpstreamAsync(Server, tenantId: tenant);

            // DELETE without a tenant removes the global registration: C has no tfs any more, A and B keep theirs.
            await Host.RemoveUpstreamAsync(Server);
            await Eventually.TrueAsync(() => Host.Upstream(Server) is null, TimeSpan.FromSeconds(60), "the global registration to go");
            Assert.DoesNotContain((await clients[TenantC].ListToolsAsync()).Select(t => t.Name), n => n.StartsWith(Server + "__", StringComparison.Ordinal));
            await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => clients[TenantC].CallToolAsync($"{Server}__list_allowed_directories").AsTask());
            await AssertReachesAsync(clients[TenantA], roots, own: TenantA);

            // With two tenants' registrations left, a DELETE that names none is ambiguous.
            using (var http = Host.OperatorHttp())
            {
                Assert.Equal(HttpStatusCode.Conflict, (await http.DeleteAsync($"/api/v1/servers/{Server}")).StatusCode);
                Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync($"/api/v1/servers/{Server}?tenantId={TenantC}")).StatusCode);
            }

            await Host.RemoveUpstreamAsync(Server, TenantA);
            await Eventually.TrueAsync(() => Host.Upstream(Server, TenantA) is null, TimeSpan.FromSeconds(60), "tenant A's registration to go");
            Assert.DoesNotContain((await clients[TenantA].ListToolsAsync()).Select(t => t.Name), n => n.StartsWith(Server + "__", StringComparison.Ordinal));
            await AssertReachesAsync(clients[TenantB], roots, own: TenantB);

            // The last one goes with a DELETE that names nothing, as before ids carried several registrations.
            await Host.RemoveUpstreamAsync(Server);
            await Eventually.TrueAsync(() => Host.Upstream(Server, TenantB) is null, TimeSpan.FromSeconds(60), "tenant B's registration to go");
        }
        finally
        {
            foreach (var client in clients.Values) await client.DisposeAsync();
        }
    }

    /// <summary>The tenant's calls land on the process whose root is <paramref name="own"/>'s, and nowhere else.</summary>
    private static async Task AssertReachesAsync(McpClient client, Dictionary<string, string> roots, string own)
    {
        var allowed = RefusalAssert.Text(await client.CallToolAsync($"{Server}__list_allowed_directories"));
        foreach (var (name, root) in roots)
        {
            var read = await client.CallToolAsync($"{Server}__read_text_file", new Dictionary<string, object?> { ["path"] = Path.Combine(root, "owner.txt") });
            if (name == own)
            {
                Assert.Contains(Path.GetFileName(root), allowed, StringComparison.Ordinal);
                RefusalAssert.Succeeded(read);
                Assert.Contains($"this root belongs to {name}", RefusalAssert.Text(read), StringComparison.Ordinal);
            }
            else
            {
                // The other root is outside this process's allowed directories: the server's own refusal, never the file.
                Assert.DoesNotContain(Path.GetFileName(root), allowed, StringComparison.Ordinal);
                Assert.True(read.IsError, $"{own} read {name}'s file: {RefusalAssert.Text(read)}");
                Assert.DoesNotContain($"this root belongs to {name}", RefusalAssert.Text(read), StringComparison.Ordinal);
            }
        }
    }

    /// <summary>Admins see every registration; an operator limited to tenant A sees A's and the global one; nobody sees a secret.</summary>
    private async Task AssertOperatorViewsAsync(string secret)
    {
        using var admin = Host.OperatorHttp();
        var all = await admin.GetStringAsync("/api/v1/servers");
        Assert.DoesNotContain(secret, all, StringComparison.Ordinal);
        var tenantsOfTfs = Registrations(all);
        Assert.Equal(["(global)", TenantA, TenantB], tenantsOfTfs);

        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "tfs-a-admin");
        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount("tfs-a-admin", [OperatorRoles.Admin], [TenantA], hash, DateTimeOffset.UtcNow));
        using var limited = Host.Http(key);
        Assert.Equal(["(global)", TenantA], Registrations(await limited.GetStringAsync("/api/v1/servers")));

        // A limited admin replaces its own tenant's registration but touches neither B's nor the global one.
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.DeleteAsync($"/api/v1/servers/{Server}?tenantId={TenantB}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.DeleteAsync($"/api/v1/servers/{Server}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.PostAsJsonAsync("/api/v1/servers",
            new { id = Server, transport = "stdio", command = "node", args = new[] { UpstreamPackages.Filesystem, "/" } })).StatusCode);
    }

    private static string[] Registrations(string listing) =>
    [
        .. JsonDocument.Parse(listing).RootElement.GetProperty("items").EnumerateArray()
            .Where(i => i.GetProperty("id").GetString() == Server)
            .Select(i => i.TryGetProperty("tenantId", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "(global)"),
    ];
}
