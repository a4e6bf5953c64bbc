using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>Scoped tokens, read-only first and schemas that mean something, through a real MCP client.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class LeastPrivilegeTests(EmbeddedHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    private static Dictionary<string, object?> Refund(string customer = "cust_DEMO00000001", long amount = 1250, string reason = "duplicate") =>
        new() { ["customer_id"] = customer, ["amount_cents"] = amount, ["reason"] = reason };

    private static async Task<List<string>> Names(McpClient client) =>
        [.. (await client.ListToolsAsync()).Select(t => t.Name).Order()];

    [Fact]
    public async Task Action_tools_are_hidden_and_refused_until_an_operator_opts_the_tenant_in()
    {
        await using var client = await Host.ConnectAsync();
        Assert.DoesNotContain("create_refund", await Names(client));
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund()), RefusalCodes.ReadOnly);
        Assert.Contains("support-desk", refusal.GetProperty("message").GetString());

        await Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            await using var fresh = await Host.ConnectAsync();
            Assert.Contains("create_refund", await Names(fresh));
            var receipt = await Host.CallConfirmedAsync(fresh, "create_refund", Refund());
            RefusalAssert.Succeeded(receipt);
            Assert.Equal("issued", receipt.StructuredContent!.Value.GetProperty("status").GetString());
        }
        finally
        {
            await Host.SetModeAsync("demo", "support-desk", "read-only");
        }

        RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund()), RefusalCodes.ReadOnly);

        using var admin = Host.OperatorHttp();
        var servers = await admin.GetFromJsonAsync<JsonElement>("/api/v1/tenants/demo/servers");
        var desk = servers.GetProperty("items").EnumerateArray().Single(s => s.GetProperty("serverId").GetString() == "support-desk");
        Assert.Equal("read-only", desk.GetProperty("mode").GetString());
    }

    [Fact]
    public async Task Scopes_decide_what_is_listed_and_callable()
    {
        var (readOnly, _) = await Host.MintAsync("demo", "reader", scopes: ["server:support-desk:read"]);
        var (oneTool, _) = await Host.MintAsync("demo", "narrow", scopes: ["tool:support-desk/list_orders"]);
        var (none, _) = await Host.MintAsync("demo", "nothing", scopes: []);

        await Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            await using var reader = await Host.ConnectAsync(readOnly);
            Assert.Equal(["list_orders", "lookup_customer_by_email"], await Names(reader));
            RefusalAssert.Refused(await reader.CallToolAsync("create_refund", Refund()), RefusalCodes.ForbiddenScope);

            await using var narrow = await Host.ConnectAsync(oneTool);
            Assert.Equal(["list_orders"], await Names(narrow));
            RefusalAssert.Succeeded(await narrow.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }));
            RefusalAssert.Refused(await narrow.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }), RefusalCodes.ForbiddenScope);

            await using var nothing = await Host.ConnectAsync(none);
            Assert.Empty(await Names(nothing));
            RefusalAssert.Refused(await nothing.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }), RefusalCodes.ForbiddenScope);
        }
        finally
        {
            await Host.SetModeAsync("demo", "support-desk", "read-only");
        }
    }

    [Fact]
    public async Task Malformed_refunds_are_refused_with_every_violation_by_pointer()
    {
        await Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            await using var client = await Host.ConnectAsync();
            var args = Refund("cust_bad", 1_000_001, "because");
            args["note"] = "extra field";
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("create_refund", args), RefusalCodes.InvalidArguments);

            var pointers = refusal.GetProperty("violations").EnumerateArray().Select(v => v.GetProperty("pointer").GetString()).ToHashSet();
            Assert.Contains("/customer_id", pointers);
            Assert.Contains("/amount_cents", pointers);
            Assert.Contains("/reason", pointers);
            Assert.Contains("/note", pointers);
            Assert.All(refusal.GetProperty("violations").EnumerateArray(), v => Assert.False(string.IsNullOrWhiteSpace(v.GetProperty("message").GetString())));

            var missing = RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }), RefusalCodes.InvalidArguments);
            Assert.NotEmpty(missing.GetProperty("violations").EnumerateArray());

            RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund(amount: 0)), RefusalCodes.InvalidArguments);
            RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund(reason: "Fraud")), RefusalCodes.InvalidArguments);
            RefusalAssert.Succeeded(await Host.CallConfirmedAsync(client, "create_refund", Refund(amount: 1_000_000, reason: "error")));
        }
        finally
        {
            await Host.SetModeAsync("demo", "support-desk", "read-only");
        }
    }

    [Fact]
    public async Task Operator_schema_overrides_only_tighten()
    {
        using var admin = Host.OperatorHttp();
        var tighten = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/create_refund/schema", new
        {
            reason = "refunds over 50 EUR need a ticket",
            schema = JsonDocument.Parse("""{"type":"object","properties":{"amount_cents":{"maximum":5000}},"additionalProperties":true}""").RootElement,
        });
        Assert.Equal(HttpStatusCode.OK, tighten.StatusCode);

        await Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            await using var client = await Host.ConnectAsync();
            var over = RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund(amount: 6000)), RefusalCodes.InvalidArguments);
            Assert.Contains(over.GetProperty("violations").EnumerateArray(), v => v.GetProperty("pointer").GetString() == "/amount_cents");

            // The override says additionalProperties: true, yet the tool's own closed schema still applies.
            var extra = Refund(amount: 100);
            extra["sneaky"] = true;
            RefusalAssert.Refused(await client.CallToolAsync("create_refund", extra), RefusalCodes.InvalidArguments);

            RefusalAssert.Succeeded(await Host.CallConfirmedAsync(client, "create_refund", Refund(amount: 4999)));
        }
        finally
        {
            await Host.SetModeAsync("demo", "support-desk", "read-only");
            var remove = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/create_refund/schema", new { reason = "test over", schema = (object?)null });
            Assert.Equal(HttpStatusCode.OK, remove.StatusCode);
        }

        var invalid = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/create_refund/schema", new
        {
            reason = "broken",
            schema = JsonDocument.Parse("""{"type": 12}""").RootElement,
        });
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/no_such_tool/schema", new { reason = "x", schema = new { type = "object" } })).StatusCode);
    }

    [Fact]
    public async Task A_classification_override_makes_a_read_tool_an_action_for_one_tenant()
    {
        using var admin = Host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/lookup_customer_by_email", new { classification = "action", reason = "exports PII", tenantId = "demo" });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        try
        {
            await using var client = await Host.ConnectAsync();
            Assert.DoesNotContain("lookup_customer_by_email", await Names(client));
            RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }), RefusalCodes.ReadOnly);
        }
        finally
        {
            var back = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/lookup_customer_by_email", new { classification = "read", reason = "test over", tenantId = "demo" });
            Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders", new { classification = "maybe", reason = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders", new { classification = "read" })).StatusCode);
    }

    [Fact]
    public async Task Tenants_never_reach_each_other()
    {
        await Host.EnsureTenantAsync("acme");
        var (acmeToken, _) = await Host.MintAsync("acme", "acme-agent", scopes: ["server:support-desk:read", "server:support-desk:write"]);
        await using var demo = await Host.ConnectAsync();
        await using var acme = await Host.ConnectAsync(acmeToken);
        var lookup = new Dictionary<string, object?> { ["email"] = "ada@example.com" };

        // Demo's opt-in does not open acme's actions.
        await Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            Assert.Contains("create_refund", await Names(demo));
            Assert.DoesNotContain("create_refund", await Names(acme));
            RefusalAssert.Refused(await acme.CallToolAsync("create_refund", Refund()), RefusalCodes.ReadOnly);
        }
        finally
        {
            await Host.SetModeAsync("demo", "support-desk", "read-only");
        }

        // Demo's kill does not stop acme, and the other way round.
        var demoKill = await Host.KillAsync(new { scope = "tenant", tenantId = "demo", reason = "demo only" });
        try
        {
            RefusalAssert.Refused(await demo.CallToolAsync("lookup_customer_by_email", lookup), RefusalCodes.Killed);
            RefusalAssert.Succeeded(await acme.CallToolAsync("lookup_customer_by_email", lookup));
        }
        finally
        {
            await Host.ClearAsync(demoKill);
        }

        // An acme token cannot ride a demo session, whatever session id it sends.
        using var http = Host.Http(acmeToken);
        using var hijack = new HttpRequestMessage(HttpMethod.Post, "/mcp")
        {
            Content = new StringContent("""{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":{"email":"ada@example.com"}}}""", Encoding.UTF8, "application/json"),
        };
        hijack.Headers.Add("Mcp-Session-Id", demo.SessionId);
        hijack.Headers.Add("Accept", "application/json, text/event-stream");
        var response = await http.SendAsync(hijack);
        Assert.False(response.IsSuccessStatusCode, $"A foreign token was served on a demo session: {(int)response.StatusCode}");
        Assert.DoesNotContain("cust_DEMO00000001", await response.Content.ReadAsStringAsync());
    }
}
