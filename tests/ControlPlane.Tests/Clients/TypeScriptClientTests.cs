using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Clients;

/// <summary>
/// ControlPlane through the official TypeScript MCP client, which validates structuredContent against the tool's
/// advertised outputSchema, also on an error result, and throws instead of returning the result on a mismatch. What a
/// user relies on: every refusal comes back from callTool() as a result whose first text block is the refusal JSON, for
/// tools with an outputSchema (the support desk's) and without (the lab's), and every success passes that validation.
/// The C# client validates nothing, so only these tests catch a refusal or a reshaped result that breaks a schema.
/// </summary>
public sealed class TypeScriptClientTests(EmbeddedHostFixture fixture) : IClassFixture<EmbeddedHostFixture>
{
    private ControlPlaneTestHost Host => fixture.Host;

    private const string Lookup = "lookup_customer_by_email";
    private const string ListOrders = "list_orders";
    private const string CreateRefund = "create_refund";
    private const string Flaky = "lab__flaky";
    private const string EchoAction = "lab__echo_action";

    /// <summary>The tools above that declare an outputSchema; the lab's declare none.</summary>
    private static readonly HashSet<string> DeclareOutputSchema = [Lookup, ListOrders, CreateRefund];

    private static readonly string[] EveryScope = ["server:support-desk:read", "server:support-desk:write", "server:lab:read", "server:lab:write"];

    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };
    private static readonly Dictionary<string, object?> AdasOrders = new() { ["customer_id"] = "cust_DEMO00000001" };
    private static readonly Dictionary<string, object?> Refund = new() { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 1250, ["reason"] = "duplicate" };
    private static readonly Dictionary<string, object?> Hello = new() { ["text"] = "hello" };

    /// <summary>A read call of a tool with an outputSchema and of one without, for refusals that cover both.</summary>
    private static readonly (string Tool, Dictionary<string, object?>? Arguments)[] BothKinds = [(Lookup, Ada), (Flaky, null)];

    [Fact]
    public async Task Successful_reads_pass_the_clients_output_schema_validation()
    {
        await using var ts = await ConnectAsync(Host, Host.Credentials.AgentToken);
        Assert.True(ts.ValidatesOutputOf(Lookup) && ts.ValidatesOutputOf(ListOrders), "The support desk's read tools should advertise an outputSchema.");

        var customer = Succeeded(await ts.CallToolAsync(Lookup, Ada));
        Assert.Equal("cust_DEMO00000001", customer.GetProperty("id").GetString());

        var orders = Succeeded(await ts.CallToolAsync(ListOrders, AdasOrders));
        Assert.Equal("cust_DEMO00000001", orders.GetProperty("customer_id").GetString());
        Assert.NotEmpty(orders.GetProperty("orders").EnumerateArray());
    }

    [Fact]
    public async Task A_kill_switch_refusal_is_a_result_the_client_reads()
    {
        var (token, _) = await Host.MintAsync("demo", "ts-killed-agent", scopes: EveryScope);
        await using var ts = await ConnectAsync(Host, token);
        Assert.False(ts.ValidatesOutputOf(Flaky), "lab__flaky should advertise no outputSchema.");

        // An agent kill covers both tools and no other test's agent.
        var switchId = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "ts-killed-agent", reason = "ts client test" });
        try
        {
            foreach (var (tool, arguments) in BothKinds)
            {
                var refusal = await RefusedAsync(ts, tool, arguments, RefusalCodes.Killed);
                Assert.Equal("agent", refusal.GetProperty("scope").GetString());
                Assert.Equal("ts client test", refusal.GetProperty("reason").GetString());
            }
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }
    }

    [Fact]
    public async Task Invalid_arguments_are_a_result_with_the_violations()
    {
        var (token, _) = await Host.MintAsync("demo", "ts-invalid-agent", scopes: EveryScope);
        await using var ts = await ConnectAsync(Host, token);

        var missing = await RefusedAsync(ts, Lookup, new Dictionary<string, object?>(), RefusalCodes.InvalidArguments);
        Assert.NotEmpty(missing.GetProperty("violations").EnumerateArray());

        var unknown = await RefusedAsync(ts, Flaky, new Dictionary<string, object?> { ["unexpected"] = true }, RefusalCodes.InvalidArguments);
        Assert.Contains(unknown.GetProperty("violations").EnumerateArray(), v => v.GetProperty("pointer").GetString() == "/unexpected");
    }

    [Fact]
    public async Task Forbidden_scope_is_a_result_also_for_a_tool_the_client_holds_a_schema_for()
    {
        var (token, _) = await Host.MintAsync("demo", "ts-reader-agent", scopes: ["server:support-desk:read", "server:lab:read"]);
        await using var ts = await ConnectAsync(Host, token);

        // The action tools are not listed for a read-only token, so the client holds no schema for them.
        await RefusedAsync(ts, CreateRefund, Refund, RefusalCodes.ForbiddenScope);
        await RefusedAsync(ts, EchoAction, Hello, RefusalCodes.ForbiddenScope);

        // The client validates only tools it listed: an operator turns two listed read tools into actions, which this
        // token may not call, so the refusal meets the schema the client holds.
        await ClassifyAsync("support-desk", Lookup, "action");
        await ClassifyAsync("lab", "flaky", "action");
        try
        {
            Assert.True(ts.ValidatesOutputOf(Lookup));
            await RefusedAsync(ts, Lookup, Ada, RefusalCodes.ForbiddenScope);
            await RefusedAsync(ts, Flaky, null, RefusalCodes.ForbiddenScope);
        }
        finally
        {
            await ClassifyAsync("support-desk", Lookup, "read");
            await ClassifyAsync("lab", "flaky", "read");
        }
    }

    [Fact]
    public async Task Read_only_is_a_result_also_for_an_action_the_client_listed_before_the_switch()
    {
        var (token, _) = await Host.MintAsync("demo", "ts-mode-agent", scopes: EveryScope);
        try
        {
            // Listed while read-write, so the client holds create_refund's schema when the servers turn read-only.
            await SetReadWriteAsync();
            await using var ts = await ConnectAsync(Host, token);
            Assert.True(ts.ValidatesOutputOf(CreateRefund));
            await SetReadOnlyAsync();

            var refusal = await RefusedAsync(ts, CreateRefund, Refund, RefusalCodes.ReadOnly);
            Assert.Contains("support-desk", refusal.GetProperty("message").GetString());
            await RefusedAsync(ts, EchoAction, Hello, RefusalCodes.ReadOnly);
        }
        finally
        {
            await SetReadOnlyAsync();
        }
    }

    [Fact]
    public async Task Confirmation_flow_from_refusal_to_approval_to_a_validated_receipt()
    {
        var (token, _) = await Host.MintAsync("demo", "ts-confirm-agent", scopes: EveryScope);
        await SetReadWriteAsync();
        try
        {
            await using var ts = await ConnectAsync(Host, token);
            Assert.True(ts.ValidatesOutputOf(CreateRefund));

            var refundApproval = (await RefusedAsync(ts, CreateRefund, Refund, RefusalCodes.RequiresConfirmation)).GetProperty("approval_id").GetString()!;
            var echoApproval = (await RefusedAsync(ts, EchoAction, Hello, RefusalCodes.RequiresConfirmation)).GetProperty("approval_id").GetString()!;

            var receipt = Succeeded(await ts.CallToolAsync(CreateRefund, new Dictionary<string, object?>(Refund) { ["confirmation_token"] = await ApproveAsync(refundApproval) }));
            Assert.Equal("issued", receipt.GetProperty("status").GetString());

            var echo = await ts.CallToolAsync(EchoAction, new Dictionary<string, object?>(Hello) { ["confirmation_token"] = await ApproveAsync(echoApproval) });
            Assert.False(IsError(echo), "Expected the confirmed echo to succeed: " + echo);
            Assert.Equal("echo: hello", echo.GetProperty("content")[0].GetProperty("text").GetString());
        }
        finally
        {
            await SetReadOnlyAsync();
        }
    }

    [Fact]
    public async Task Rate_limited_is_a_result_with_retry_after()
    {
        using (var admin = Host.OperatorHttp())
        {
            var set = await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "agent", agentId = "ts-rate-agent", capacity = 2, refillPerSecond = 0.01 });
            Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        }

        var (token, _) = await Host.MintAsync("demo", "ts-rate-agent", scopes: EveryScope);
        await using var ts = await ConnectAsync(Host, token);
        Succeeded(await ts.CallToolAsync(Lookup, Ada));
        Succeeded(await ts.CallToolAsync(Lookup, Ada));

        foreach (var (tool, arguments) in BothKinds)
        {
            var refusal = await RefusedAsync(ts, tool, arguments, RefusalCodes.RateLimited);
            Assert.Equal("agent", refusal.GetProperty("scope").GetString());
            Assert.True(refusal.GetProperty("retry_after").GetInt32() > 0, "retry_after should be a positive number of seconds: " + refusal);
        }
    }

    [Fact]
    public async Task A_token_revoked_mid_session_is_an_unauthenticated_result()
    {
        var (token, id) = await Host.MintAsync("demo", "ts-revoked-agent", scopes: EveryScope);
        await using var ts = await ConnectAsync(Host, token);
        Succeeded(await ts.CallToolAsync(Lookup, Ada));

        using (var admin = Host.OperatorHttp())
        {
            Assert.Equal(HttpStatusCode.OK, (await admin.DeleteAsync($"/api/v1/tenants/demo/tokens/{id}")).StatusCode);
        }

        await RefusedAsync(ts, Lookup, Ada, RefusalCodes.Unauthenticated);
        await RefusedAsync(ts, Flaky, null, RefusalCodes.Unauthenticated);
    }

    [Fact]
    public async Task An_open_circuit_is_an_upstream_unavailable_result()
    {
        // A host of its own: the open circuit refuses every lab tool for its break duration.
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Downstream:Servers:lab:MinimumThroughput"] = "4",
            ["ControlPlane:Downstream:Servers:lab:FailureRatio"] = "0.5",
            ["ControlPlane:Downstream:Servers:lab:SamplingDuration"] = "00:00:30",
            ["ControlPlane:Downstream:Servers:lab:BreakDuration"] = "00:00:20",
        });
        var (token, _) = await host.MintAsync("demo", "ts-circuit-agent", scopes: EveryScope);
        await using var ts = await ConnectAsync(host, token);
        Assert.False(IsError(await ts.CallToolAsync(Flaky)));

        // Until the circuit opens the failures are plain error results; every one must come back from callTool().
        host.Lab.Failing = true;
        JsonElement? open = null;
        for (var i = 0; i < 20 && open is null; i++)
        {
            var result = await ts.CallToolAsync(Flaky);
            Assert.True(IsError(result), "A failing downstream should give an error result: " + result);
            if (RefusalCode(result) == RefusalCodes.UpstreamUnavailable) open = result;
        }

        Assert.True(open.HasValue, "The circuit did not open within 20 failing calls.");
        var refusal = AssertRefusal(open.Value, Flaky, RefusalCodes.UpstreamUnavailable);
        Assert.True(refusal.GetProperty("retry_after").GetInt32() is > 0 and <= 20, "retry_after: " + refusal);
    }

    /// <remarks>
    /// Needs tools/list to advertise the projected outputSchema: against the tool's own schema, whose required fields the
    /// projection removes, the client rejects the result and callTool throws McpError -32602.
    /// </remarks>
    [Fact]
    public async Task A_projected_result_passes_the_clients_validation_and_holds_only_the_projected_fields()
    {
        using var admin = Host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection",
            new { fields = new[] { "/orders/*/id", "/orders/*/status" }, reason = "ts client test: ids and status only" });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        try
        {
            // A fresh client, so the schema it validates against is the one listed under the projection.
            await using var ts = await ConnectAsync(Host, Host.Credentials.AgentToken);
            var projected = Succeeded(await ts.CallToolAsync(ListOrders, AdasOrders));

            Assert.Equal(["orders"], projected.EnumerateObject().Select(p => p.Name));
            var orders = projected.GetProperty("orders").EnumerateArray().ToList();
            Assert.NotEmpty(orders);
            Assert.All(orders, o => Assert.Equal(["id", "status"], o.EnumerateObject().Select(p => p.Name).Order()));
        }
        finally
        {
            var removed = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { remove = true, reason = "ts client test over" });
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        }
    }

    private static Task<TypeScriptMcpClient> ConnectAsync(ControlPlaneTestHost host, string token) =>
        TypeScriptMcpClient.ConnectAsync(new Uri(host.BaseUrl, "/mcp"), token);

    private static async Task<JsonElement> RefusedAsync(TypeScriptMcpClient ts, string tool, IReadOnlyDictionary<string, object?>? arguments, string code) =>
        AssertRefusal(await ts.CallToolAsync(tool, arguments), tool, code);

    /// <summary>
    /// A refusal as a user of the client reads it (callTool already returned instead of throwing): isError, and the first
    /// content block's text is the refusal JSON with its code and a message. A tool with an outputSchema carries no
    /// structuredContent on a refusal (the client would validate it against that schema); a tool without one may carry
    /// the same JSON there.
    /// </summary>
    private static JsonElement AssertRefusal(JsonElement result, string tool, string code)
    {
        Assert.True(IsError(result), $"Expected {code} from {tool}, got success: {result}");
        var first = result.GetProperty("content")[0];
        Assert.Equal("text", first.GetProperty("type").GetString());
        var refusal = JsonDocument.Parse(first.GetProperty("text").GetString()!).RootElement.Clone();
        Assert.Equal(code, refusal.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(refusal.GetProperty("message").GetString()), "The refusal has no message: " + refusal);

        var hasStructured = result.TryGetProperty("structuredContent", out var structured);
        if (DeclareOutputSchema.Contains(tool)) Assert.False(hasStructured, $"{tool} declares an outputSchema, yet its refusal carries structuredContent: {result}");
        else if (hasStructured) Assert.True(JsonElement.DeepEquals(refusal, structured), $"structuredContent differs from the refusal text: {result}");
        return refusal;
    }

    /// <summary>The structuredContent of a successful result (which the client has validated against the tool's outputSchema).</summary>
    private static JsonElement Succeeded(JsonElement result)
    {
        Assert.False(IsError(result), "Expected success, got: " + result);
        Assert.True(result.TryGetProperty("structuredContent", out var structured), "A success without structuredContent: " + result);
        return structured;
    }

    private static bool IsError(JsonElement result) => result.TryGetProperty("isError", out var isError) && isError.ValueKind == JsonValueKind.True;

    private static string? RefusalCode(JsonElement result)
    {
        try
        {
            var text = result.GetProperty("content")[0].GetProperty("text").GetString()!;
            return JsonDocument.Parse(text).RootElement.TryGetProperty("code", out var code) ? code.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task<string> ApproveAsync(string approvalId)
    {
        using var admin = Host.OperatorHttp();
        var response = await admin.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Approving failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("confirmationToken").GetString()!;
    }

    private async Task ClassifyAsync(string serverId, string toolName, string classification)
    {
        using var admin = Host.OperatorHttp();
        var response = await admin.PutAsJsonAsync($"/api/v1/servers/{serverId}/tools/{toolName}", new { classification, reason = "ts client test", tenantId = "demo" });
        Assert.True(response.IsSuccessStatusCode, $"Classifying failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private async Task SetReadWriteAsync()
    {
        await Host.SetModeAsync("demo", "support-desk", "read-write");
        await Host.SetModeAsync("demo", LabTools.ServerId, "read-write");
    }

    private async Task SetReadOnlyAsync()
    {
        await Host.SetModeAsync("demo", "support-desk", "read-only");
        await Host.SetModeAsync("demo", LabTools.ServerId, "read-only");
    }
}
