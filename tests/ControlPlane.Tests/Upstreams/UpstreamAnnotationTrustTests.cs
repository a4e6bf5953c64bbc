using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// An upstream does not classify its own tools: the lab server marks 'crash' (which kills its own process) and 'echo'
/// read-only, and neither is a read until an operator says so, by classifying it or by trusting the server's
/// annotations (an all-tenant admin, on record). The host's own in-process tools keep what their code declares.
/// </summary>
[Collection(UpstreamHostCollection.Name)]
public sealed class UpstreamAnnotationTrustTests(UpstreamHostFixture fixture)
{
    private const string Server = "lab-untrusted";

    private ControlPlaneTestHost Host => fixture.Host;

    [UpstreamFact]
    public async Task An_upstreams_readOnlyHint_is_shown_as_a_hint_and_decides_nothing_until_an_all_tenant_admin_trusts_it()
    {
        await Host.RegisterNodeAsync(Server, UpstreamPackages.Lab);
        var (token, _) = await Host.MintAsync("demo", "trust-agent", scopes: [$"server:{Server}:read"]);
        await using var client = await Host.ConnectAsync(token);

        // Claimed read-only, treated as actions: not listed, and a read-scoped token may not call them.
        var listed = (await client.ListToolsAsync()).Select(t => t.Name).ToList();
        Assert.DoesNotContain($"{Server}__echo", listed);
        Assert.DoesNotContain($"{Server}__crash", listed);
        RefusalAssert.Refused(await client.CallToolAsync($"{Server}__echo", new Dictionary<string, object?> { ["text"] = "hi" }), RefusalCodes.ForbiddenScope);
        Assert.Equal("running", Host.Upstream(Server)!.Status);

        // Operators see the claim beside the classification the guard enforces.
        var echo = await ToolViewAsync(Server, "echo");
        Assert.Equal("action", echo.GetProperty("classification").GetString());
        Assert.Equal("action", echo.GetProperty("declaredClassification").GetString());
        Assert.Equal("untrusted", echo.GetProperty("classificationSource").GetString());
        Assert.Equal("read", echo.GetProperty("annotationHint").GetString());
        Assert.False((await ToolViewAsync(Server, "reset")).TryGetProperty("annotationHint", out _), "a tool without annotations claims nothing");

        // In-process tools of the host keep the classification their code declares.
        var lookup = await ToolViewAsync("support-desk", "lookup_customer_by_email");
        Assert.Equal("read", lookup.GetProperty("classification").GetString());
        Assert.Equal("code", lookup.GetProperty("classificationSource").GetString());
        Assert.Equal("action", (await ToolViewAsync("support-desk", "create_refund")).GetProperty("classification").GetString());

        // A tenant-limited admin may neither trust a server's annotations nor register one trusted.
        using var limited = await LimitedAdminAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.PutAsJsonAsync($"/api/v1/servers/{Server}/trust-annotations", new { trust = true, reason = "mine" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.PostAsJsonAsync("/api/v1/servers",
            new { id = "lab-limited-trust", tenantId = "demo", transport = "http", url = "http://127.0.0.1:9/mcp", trustAnnotations = true })).StatusCode);

        using var admin = Host.OperatorHttp();
        var noReason = await admin.PutAsJsonAsync($"/api/v1/servers/{Server}/trust-annotations", new { trust = true });
        Assert.Equal(HttpStatusCode.BadRequest, noReason.StatusCode);
        Assert.True(JsonDocument.Parse(await noReason.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").TryGetProperty("reason", out _));

        // Trusted by an all-tenant admin: the claim now classifies, on record as an operator action.
        var trusted = await admin.PutAsJsonAsync($"/api/v1/servers/{Server}/trust-annotations", new { trust = true, reason = "vendor reviewed, ticket SEC-7" });
        Assert.True(trusted.IsSuccessStatusCode, await trusted.Content.ReadAsStringAsync());
        Assert.True(JsonDocument.Parse(await trusted.Content.ReadAsStringAsync()).RootElement.GetProperty("trustAnnotations").GetBoolean());
        await Eventually.TrueAsync(async () => (await client.ListToolsAsync()).Any(t => t.Name == $"{Server}__echo"), TimeSpan.FromSeconds(60), "the trusted read to be listed");
        var reply = await client.CallToolAsync($"{Server}__echo", new Dictionary<string, object?> { ["text"] = "trusted" });
        RefusalAssert.Succeeded(reply);
        Assert.Equal("annotations", (await ToolViewAsync(Server, "echo")).GetProperty("classificationSource").GetString());
        Assert.DoesNotContain($"{Server}__reset", (await client.ListToolsAsync()).Select(t => t.Name));

        var audit = await admin.GetStringAsync("/api/v1/audit?tenantId=_cluster&limit=50");
        Assert.Contains("server.trust-annotations.set", audit, StringComparison.Ordinal);
        Assert.Contains("SEC-7", audit, StringComparison.Ordinal);

        // Withdrawn: actions again.
        var withdrawn = await admin.PutAsJsonAsync($"/api/v1/servers/{Server}/trust-annotations", new { trust = false, reason = "vendor changed" });
        Assert.True(withdrawn.IsSuccessStatusCode, await withdrawn.Content.ReadAsStringAsync());
        await Eventually.TrueAsync(async () => (await client.ListToolsAsync()).All(t => t.Name != $"{Server}__echo"), TimeSpan.FromSeconds(60), "the untrusted tool to leave the list");
        await Host.RemoveUpstreamAsync(Server);
    }

    private async Task<JsonElement> ToolViewAsync(string serverId, string tool)
    {
        using var http = Host.OperatorHttp();
        var servers = JsonDocument.Parse(await http.GetStringAsync("/api/v1/tenants/demo/servers")).RootElement.GetProperty("items");
        var server = servers.EnumerateArray().Single(s => s.GetProperty("serverId").GetString() == serverId);
        return server.GetProperty("tools").EnumerateArray().Single(t => t.GetProperty("name").GetString() == tool).Clone();
    }

    private async Task<HttpClient> LimitedAdminAsync()
    {
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "trust-demo-admin");
        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount("trust-demo-admin", [OperatorRoles.Admin], ["demo"], hash, DateTimeOffset.UtcNow));
        return Host.Http(key);
    }
}
