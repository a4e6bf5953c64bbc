using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.SupportDesk;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Limits;

/// <summary>Read tools that lie a little: projection, caps and redaction before a result leaves.</summary>
public sealed class ResultShapingTests : IAsyncLifetime
{
    private ControlPlaneTestHost _host = null!;

    public async Task InitializeAsync() => _host = await ControlPlaneTestHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task No_other_column_of_the_wide_customer_row_appears_anywhere_in_the_response_bytes()
    {
        var ada = SupportDeskSeed.Build().Single(c => Equals(c.Row["id"], SupportDeskSeed.DemoCustomerId)).Row;
        string[] shown = ["id", "plan", "region", "signup_date", "has_active_subscription", "churn_risk_band"];
        Assert.True(ada.Count >= 80);

        var bytes = await RawCallAsync("lookup_customer_by_email", """{"email":"ada@example.com"}""");
        var text = Encoding.UTF8.GetString(bytes);
        Assert.Contains(SupportDeskSeed.DemoCustomerId, text);

        var shownValues = shown.Select(c => Convert.ToString(ada[c], System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var checkedColumns = 0;
        foreach (var (column, value) in ada)
        {
            if (shown.Contains(column) || value is not string s || s.Length < 5 || shownValues.Contains(s)) continue;
            checkedColumns++;
            Assert.False(text.Contains(s, StringComparison.Ordinal), $"Column '{column}' leaked: {s}");
        }

        Assert.True(checkedColumns > 40, $"Only {checkedColumns} distinctive columns were checked.");
    }

    [Fact]
    public async Task An_operator_projection_keeps_only_allowed_fields_caps_arrays_and_marks_the_cut()
    {
        using var admin = _host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new
        {
            fields = new[] { "/customer_id", "/orders/*/id", "/orders/*/status" },
            maxItems = 2,
            reason = "agents only need ids and status",
        });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        await using var client = await _host.ConnectAsync();
        var result = await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        RefusalAssert.Succeeded(result);
        var structured = result.StructuredContent!.Value;
        Assert.Equal("cust_DEMO00000001", structured.GetProperty("customer_id").GetString());
        Assert.True(structured.GetProperty("_truncated").GetBoolean());
        var orders = structured.GetProperty("orders").EnumerateArray().ToList();
        Assert.Equal(2, orders.Count);
        Assert.All(orders, o => Assert.Equal(["id", "status"], o.EnumerateObject().Select(p => p.Name).Order()));

        // The text block carries the same projected JSON, never the dropped fields.
        var text = RefusalAssert.Text(result);
        Assert.DoesNotContain("total_cents", text);
        Assert.DoesNotContain("created_at", text);

        var tiny = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { maxBytes = 64, reason = "tiny" });
        Assert.Equal(HttpStatusCode.OK, tiny.StatusCode);
        var cut = await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        Assert.True(cut.StructuredContent!.Value.GetProperty("_truncated").GetBoolean());
        Assert.DoesNotContain("ord_", cut.StructuredContent!.Value.GetRawText());

        var removed = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { remove = true, reason = "done" });
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        var full = await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        Assert.True(full.StructuredContent!.Value.GetProperty("orders")[0].TryGetProperty("total_cents", out _));

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { fields = new[] { "id" }, reason = "x" })).StatusCode);
    }

    /// <summary>Speaks MCP over plain HTTP so the test sees every byte the agent receives.</summary>
    private async Task<byte[]> RawCallAsync(string tool, string argumentsJson)
    {
        using var http = _host.Http(_host.Credentials.AgentToken);
        http.DefaultRequestHeaders.Add("Accept", "application/json, text/event-stream");
        var init = await http.PostAsync("/mcp", new StringContent("""{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, init.StatusCode);
        var session = init.Headers.GetValues("Mcp-Session-Id").Single();
        http.DefaultRequestHeaders.Add("Mcp-Session-Id", session);
        http.DefaultRequestHeaders.Add("MCP-Protocol-Version", "2025-06-18");
        await http.PostAsync("/mcp", new StringContent("""{"jsonrpc":"2.0","method":"notifications/initialized"}""", Encoding.UTF8, "application/json"));

        var body = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"" + tool + "\",\"arguments\":" + argumentsJson + "}}";
        var call = await http.PostAsync("/mcp", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, call.StatusCode);
        return await call.Content.ReadAsByteArrayAsync();
    }
}
