using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// Resource templates and subscriptions of the real everything server, through the guard: templates are listed and
/// URIs made from them are read on /mcp; a subscription's updates reach the subscribing session and no other.
/// </summary>
[Collection(UpstreamHostCollection.Name)]
public sealed class UpstreamResourceSubscriptionTests(UpstreamHostFixture fixture)
{
    private const string Server = "everything-sub";
    private const string Document = "demo://resource/static/document/architecture.md";

    private ControlPlaneTestHost Host => fixture.Host;

    [UpstreamFact]
    public async Task Resource_templates_are_listed_and_uris_made_from_them_are_guarded_audited_reads()
    {
        await Host.RegisterNodeAsync("everything-tpl", UpstreamPackages.Everything, ["stdio"]);
        var (token, _) = await Host.MintAsync("demo", "template-reader", scopes: ["server:everything-tpl:read"]);
        await using var client = await Host.ConnectAsync(token);

        var templates = (await client.ListResourceTemplatesAsync()).Select(t => t.UriTemplate).ToList();
        Assert.Contains("demo://resource/dynamic/text/{resourceId}", templates);

        // Never listed as a resource: routed to its server by the template it was made from.
        const string made = "demo://resource/dynamic/text/7";
        var read = await client.ReadResourceAsync(made);
        Assert.Contains("7", Assert.IsType<TextResourceContents>(Assert.Single(read.Contents)).Text, StringComparison.Ordinal);

        // An agent without the read scope lists no templates.
        var (other, _) = await Host.MintAsync("demo", "template-outsider", scopes: ["server:support-desk:read"]);
        await using (var outsider = await Host.ConnectAsync(other, "/mcp/everything-tpl"))
        {
            Assert.Empty(await outsider.ListResourceTemplatesAsync());
            var refused = await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => outsider.ReadResourceAsync(made).AsTask());
            Assert.Contains(RefusalCodes.ForbiddenScope, refused.Message, StringComparison.Ordinal);
        }

        using var http = Host.OperatorHttp();
        var audit = JsonDocument.Parse(await http.GetStringAsync("/api/v1/audit?tenantId=demo&tool=" + Uri.EscapeDataString(made))).RootElement.GetProperty("items");
        Assert.Contains(audit.EnumerateArray(), i => i.GetProperty("server").GetString() == "everything-tpl" && i.GetProperty("outcome").GetString() == "success");
    }

    [UpstreamFact]
    public async Task Resource_updates_reach_only_the_sessions_that_subscribed()
    {
        await Host.RegisterNodeAsync(Server, UpstreamPackages.Everything, ["stdio"]);
        using (var http = Host.OperatorHttp())
        {
            // The everything server sends its simulated updates (every 5 s) once this tool is called.
            var response = await http.PutAsJsonAsync($"/api/v1/servers/{Server}/tools/toggle-subscriber-updates", new { classification = "read", reason = "only starts simulated updates" });
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }

        await Host.EnsureTenantAsync("sub-other");
        var (subscriberToken, _) = await Host.MintAsync("demo", "subscriber", scopes: [$"server:{Server}:read"]);
        var (bystanderToken, _) = await Host.MintAsync("demo", "bystander", scopes: [$"server:{Server}:read"]);
        var (otherTenantToken, _) = await Host.MintAsync("sub-other", "other-tenant-reader", scopes: [$"server:{Server}:read"]);
        var (noScopeToken, _) = await Host.MintAsync("demo", "no-scope", scopes: ["server:support-desk:read"]);

        var updates = new ConcurrentDictionary<string, ConcurrentQueue<string>>();
        async Task<McpClient> ConnectAsync(string name, string token)
        {
            var client = await Host.ConnectAsync(token);
            var seen = updates.GetOrAdd(name, _ => new ConcurrentQueue<string>());
            client.RegisterNotificationHandler(NotificationMethods.ResourceUpdatedNotification, (notification, _) =>
            {
                seen.Enqueue(notification.Params?["uri"]?.GetValue<string>() ?? "");
                return ValueTask.CompletedTask;
            });
            return client;
        }

        await using var subscriber = await ConnectAsync("subscriber", subscriberToken);
        await using var bystander = await ConnectAsync("bystander", bystanderToken);
        await using var otherTenant = await ConnectAsync("other-tenant", otherTenantToken);
        await using var noScope = await ConnectAsync("no-scope", noScopeToken);

        foreach (var client in new[] { subscriber, bystander, otherTenant }) Assert.Contains(Document, (await client.ListResourcesAsync()).Select(r => r.Uri));

        // Without the read scope, a subscription is refused like a read.
        var refused = await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => noScope.SubscribeToResourceAsync(Document));
        Assert.Contains(RefusalCodes.ForbiddenScope, refused.Message, StringComparison.Ordinal);

        await subscriber.SubscribeToResourceAsync(Document);
        RefusalAssert.Succeeded(await subscriber.CallToolAsync($"{Server}__toggle-subscriber-updates"));

        // Two updates (the first at once, the next 5 s later) reach the subscriber; in that time, nobody else got one.
        await Eventually.TrueAsync(() => updates["subscriber"].Count >= 2, TimeSpan.FromSeconds(60), "two updates to reach the subscriber");
        Assert.All(updates["subscriber"], uri => Assert.Equal(Document, uri));
        Assert.Empty(updates["bystander"]);
        Assert.Empty(updates["other-tenant"]);
        Assert.Empty(updates["no-scope"]);

        // A kill switch on the subscriber's agent stops its updates as it stops its reads.
        var switchId = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "subscriber", reason = "stop the subscriber" });
        await Task.Delay(TimeSpan.FromSeconds(1));
        var countWhenKilled = updates["subscriber"].Count;
        await Task.Delay(TimeSpan.FromSeconds(11));
        Assert.Equal(countWhenKilled, updates["subscriber"].Count);
        await Host.ClearAsync(switchId);
        await Eventually.TrueAsync(() => updates["subscriber"].Count > countWhenKilled, TimeSpan.FromSeconds(60), "updates to reach the subscriber again once the switch is cleared");

        // After unsubscribing, the subscriber hears no more; nobody else ever did.
        await subscriber.UnsubscribeFromResourceAsync(Document);
        await Task.Delay(TimeSpan.FromSeconds(1));
        var countWhenUnsubscribed = updates["subscriber"].Count;
        await Task.Delay(TimeSpan.FromSeconds(11));
        Assert.Equal(countWhenUnsubscribed, updates["subscriber"].Count);
        Assert.Empty(updates["bystander"]);
        Assert.Empty(updates["other-tenant"]);

        using var audit = Host.OperatorHttp();
        var items = JsonDocument.Parse(await audit.GetStringAsync("/api/v1/audit?tenantId=demo&tool=" + Uri.EscapeDataString(Document))).RootElement.GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(items, i => i.GetProperty("agentId").GetString() == "subscriber" && i.GetProperty("outcome").GetString() == "success");
        Assert.Contains(items, i => i.GetProperty("agentId").GetString() == "no-scope" && i.GetProperty("code").GetString() == RefusalCodes.ForbiddenScope);
    }
}
