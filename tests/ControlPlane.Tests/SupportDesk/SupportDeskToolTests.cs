using System.Text.Json;
using ControlPlane.SupportDesk;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Xunit.Abstractions;

namespace ControlPlane.Tests.SupportDesk;

/// <summary>
/// Exercises the tools through a real MCP client/server pair (see <see cref="SupportDeskMcpHarness"/>),
/// so what is asserted is exactly what an agent would receive.
/// </summary>
public sealed class SupportDeskToolTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string AdaId = "cust_DEMO00000001";
    private const string AdaEmail = "ada@example.com";

    private static readonly string[] ProjectedColumns = ["id", "plan", "region", "signup_date", "has_active_subscription", "churn_risk_band"];

    // Columns the leak check must cover at minimum; guards against the generic check silently skipping them.
    private static readonly string[] RequiredLeakChecks =
    [
        "email", "secondary_email", "billing_email", "phone", "mobile_phone", "first_name", "last_name", "full_name",
        "date_of_birth", "address_line1", "address_line2", "postcode", "billing_address_line1", "shipping_address_line1",
        "tax_id", "vat_number", "card_last4", "card_fingerprint", "iban_last4", "support_pin", "signup_ip", "last_login_ip",
        "user_agent", "linkedin_url", "social_handle", "notes",
    ];

    private readonly SupportDeskTestDatabase _db = new();
    private readonly CancellationToken _ct = SupportDeskTestDatabase.Timeout();
    private SupportDeskMcpHarness _mcp = null!;
    private IReadOnlyList<McpServerTool> _tools = [];

    public async Task InitializeAsync()
    {
        await _db.Database.InitializeAsync(_ct);
        _tools = SupportDeskServer.CreateTools(_db.Database);
        _mcp = await SupportDeskMcpHarness.StartAsync(_tools, _ct);
    }

    public async Task DisposeAsync()
    {
        await _mcp.DisposeAsync();
        _db.Dispose();
    }

    [Fact]
    public void CreateTools_returns_the_three_tools_in_order()
    {
        Assert.Equal(["lookup_customer_by_email", "list_orders", "create_refund"], _tools.Select(t => t.ProtocolTool.Name));
        Assert.Equal("support-desk", SupportDeskServer.ServerId);
    }

    [Fact]
    public async Task Annotations_mark_reads_read_only_and_refund_destructive()
    {
        var listed = (await _mcp.Client.ListToolsAsync(cancellationToken: _ct)).ToDictionary(t => t.Name, t => t.ProtocolTool);

        // Check both the in-process tool objects (what the host catalog sees) and the wire (what clients see).
        foreach (var tool in _tools.Select(t => t.ProtocolTool).Concat(listed.Values))
        {
            var annotations = tool.Annotations;
            Assert.NotNull(annotations);
            Assert.False(annotations.OpenWorldHint);
            switch (tool.Name)
            {
                case "lookup_customer_by_email" or "list_orders":
                    Assert.True(annotations.ReadOnlyHint);
                    Assert.False(annotations.DestructiveHint);
                    break;
                case "create_refund":
                    Assert.False(annotations.ReadOnlyHint);
                    Assert.True(annotations.DestructiveHint);
                    Assert.False(annotations.IdempotentHint);
                    break;
                default:
                    Assert.Fail($"unexpected tool {tool.Name}");
                    break;
            }

            Assert.NotNull(tool.OutputSchema);
            Assert.False(string.IsNullOrWhiteSpace(tool.Description));
        }

        Assert.Equal(3, listed.Count);
    }

    [Fact]
    public void Create_refund_input_schema_carries_the_data_annotations()
    {
        var schema = _tools.Single(t => t.ProtocolTool.Name == "create_refund").ProtocolTool.InputSchema;
        output.WriteLine(schema.GetRawText());

        var properties = schema.GetProperty("properties");
        Assert.Equal("^cust_[A-Z0-9]{12}$", properties.GetProperty("customer_id").GetProperty("pattern").GetString());
        Assert.Equal("integer", properties.GetProperty("amount_cents").GetProperty("type").GetString());
        Assert.Equal(1, properties.GetProperty("amount_cents").GetProperty("minimum").GetInt64());
        Assert.Equal(1_000_000, properties.GetProperty("amount_cents").GetProperty("maximum").GetInt64());
        Assert.Equal(
            ["duplicate", "fraud", "requested", "error"],
            properties.GetProperty("reason").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(
            ["customer_id", "amount_cents", "reason"],
            schema.GetProperty("required").EnumerateArray().Select(e => e.GetString()));

        // Request-scoped plumbing (RequestContext, CancellationToken) must not leak into the schema.
        Assert.Equal(3, properties.EnumerateObject().Count());
    }

    [Fact]
    public async Task Lookup_returns_exactly_the_six_summary_fields()
    {
        var result = await _mcp.CallAsync("lookup_customer_by_email", new() { ["email"] = AdaEmail }, _ct);

        Assert.NotEqual(true, result.IsError);
        var structured = Assert.IsType<JsonElement>(result.StructuredContent);
        Assert.Equal(ProjectedColumns.Order(StringComparer.Ordinal), structured.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal(AdaId, structured.GetProperty("id").GetString());
        Assert.Equal("enterprise", structured.GetProperty("plan").GetString());
        Assert.Equal("eu-west", structured.GetProperty("region").GetString());
        Assert.Equal("2019-03-14", structured.GetProperty("signup_date").GetString());
        Assert.True(structured.GetProperty("has_active_subscription").GetBoolean());
        Assert.Equal("low", structured.GetProperty("churn_risk_band").GetString());

        // The text block carries the same JSON for clients that ignore structuredContent.
        var text = Assert.IsType<TextContentBlock>(Assert.Single(result.Content));
        using var parsed = JsonDocument.Parse(text.Text);
        Assert.True(JsonElement.DeepEquals(structured, parsed.RootElement));
    }

    [Fact]
    public async Task Lookup_is_case_insensitive_on_email()
    {
        var result = await _mcp.CallAsync("lookup_customer_by_email", new() { ["email"] = "  ADA@Example.COM " }, _ct);

        Assert.NotEqual(true, result.IsError);
        Assert.Equal(AdaId, result.StructuredContent!.Value.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Lookup_output_leaks_no_other_column_of_the_customer()
    {
        var result = await _mcp.CallAsync("lookup_customer_by_email", new() { ["email"] = AdaEmail }, _ct);
        Assert.NotEqual(true, result.IsError);

        var haystack = Haystack(result);
        var row = Assert.Single(await _db.QueryAsync("SELECT * FROM customers WHERE id = $id;", ("$id", AdaId)));
        var projectedValues = row.Where(c => ProjectedColumns.Contains(c.Column)).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);

        // Every other column whose value is long enough to be meaningful (short flags like "1" or "GB" would match by
        // coincidence) must be absent from everything the client received; the named PII columns are checked regardless.
        var checkedColumns = new List<string>();
        foreach (var (column, value) in row)
        {
            var required = RequiredLeakChecks.Contains(column);
            if (ProjectedColumns.Contains(column) || value is null || (!required && value.Length < 4) || projectedValues.Contains(value))
            {
                continue;
            }

            checkedColumns.Add(column);
            Assert.False(haystack.Contains(value, StringComparison.OrdinalIgnoreCase), $"lookup output leaks column '{column}' ({value})");
        }

        output.WriteLine($"checked {checkedColumns.Count} columns: {string.Join(", ", checkedColumns)}");
        Assert.All(RequiredLeakChecks, c => Assert.Contains(c, checkedColumns));
        Assert.True(checkedColumns.Count >= 60, $"only {checkedColumns.Count} columns were checked");
    }

    [Fact]
    public async Task Lookup_of_unknown_email_is_an_error_result()
    {
        var result = await _mcp.CallAsync("lookup_customer_by_email", new() { ["email"] = "nobody@example.com" }, _ct);

        Assert.True(result.IsError);
        Assert.Null(result.StructuredContent);
        Assert.Contains("No customer found", Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lookup_of_malformed_email_is_an_error_result()
    {
        var result = await _mcp.CallAsync("lookup_customer_by_email", new() { ["email"] = "   " }, _ct);

        Assert.True(result.IsError);
    }

    [Fact]
    public async Task List_orders_returns_orders_newest_first()
    {
        var result = await _mcp.CallAsync("list_orders", new() { ["customer_id"] = AdaId }, _ct);

        Assert.NotEqual(true, result.IsError);
        var structured = result.StructuredContent!.Value;
        Assert.Equal(AdaId, structured.GetProperty("customer_id").GetString());
        var orders = structured.GetProperty("orders").EnumerateArray().ToList();
        Assert.Equal(["ord_DEMO00000003", "ord_DEMO00000002", "ord_DEMO00000001"], orders.Select(o => o.GetProperty("id").GetString()));
        Assert.All(orders, o => Assert.Equal(
            ["created_at", "currency", "id", "status", "total_cents"],
            o.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)));

        var newest = orders[0];
        Assert.Equal("2024-05-20T08:45:00Z", newest.GetProperty("created_at").GetString());
        Assert.Equal("shipped", newest.GetProperty("status").GetString());
        Assert.Equal(23_999, newest.GetProperty("total_cents").GetInt64());
        Assert.Equal("GBP", newest.GetProperty("currency").GetString());

        using var parsed = JsonDocument.Parse(Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text);
        Assert.True(JsonElement.DeepEquals(structured, parsed.RootElement));
    }

    [Fact]
    public async Task List_orders_honours_limit()
    {
        var result = await _mcp.CallAsync("list_orders", new() { ["customer_id"] = AdaId, ["limit"] = 2 }, _ct);

        Assert.NotEqual(true, result.IsError);
        Assert.Equal(
            ["ord_DEMO00000003", "ord_DEMO00000002"],
            result.StructuredContent!.Value.GetProperty("orders").EnumerateArray().Select(o => o.GetProperty("id").GetString()));
    }

    [Theory]
    [InlineData("cust_DEMO0000001", 20)] // 11 characters
    [InlineData("cust_ZZZZZZZZZZZZ", 20)] // well-formed but unknown
    [InlineData(AdaId, 0)]
    [InlineData(AdaId, 101)]
    public async Task List_orders_rejects_bad_arguments(string customerId, int limit)
    {
        var result = await _mcp.CallAsync("list_orders", new() { ["customer_id"] = customerId, ["limit"] = limit }, _ct);

        Assert.True(result.IsError);
        Assert.Null(result.StructuredContent);
    }

    [Fact]
    public async Task Create_refund_inserts_an_issued_refund()
    {
        var result = await _mcp.CallAsync(
            "create_refund",
            new() { ["customer_id"] = AdaId, ["amount_cents"] = 4_500, ["reason"] = "duplicate" },
            _ct);

        Assert.NotEqual(true, result.IsError);
        var receipt = result.StructuredContent!.Value;
        Assert.Equal(
            ["amount_cents", "customer_id", "reason", "refund_id", "status"],
            receipt.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        var refundId = receipt.GetProperty("refund_id").GetString()!;
        Assert.Matches("^rf_[A-Z0-9]{12}$", refundId);
        Assert.Equal(AdaId, receipt.GetProperty("customer_id").GetString());
        Assert.Equal(4_500, receipt.GetProperty("amount_cents").GetInt64());
        Assert.Equal("duplicate", receipt.GetProperty("reason").GetString());
        Assert.Equal("issued", receipt.GetProperty("status").GetString());

        var row = Assert.Single(await _db.QueryAsync("SELECT * FROM refunds;")).ToDictionary(c => c.Column, c => c.Value);
        Assert.Equal(refundId, row["id"]);
        Assert.Equal(AdaId, row["customer_id"]);
        Assert.Equal("4500", row["amount_cents"]);
        Assert.Equal("duplicate", row["reason"]);
        Assert.Equal("issued", row["status"]);
        Assert.Equal(SupportDeskMcpHarness.ClientName, row["mcp_client_name"]);
        Assert.False(string.IsNullOrEmpty(row["mcp_request_id"]));
        Assert.False(string.IsNullOrEmpty(row["created_at"]));
    }

    [Fact]
    public async Task Create_refund_twice_creates_two_refunds()
    {
        var args = new Dictionary<string, object?> { ["customer_id"] = AdaId, ["amount_cents"] = 100, ["reason"] = "requested" };
        var first = await _mcp.CallAsync("create_refund", args, _ct);
        var second = await _mcp.CallAsync("create_refund", args, _ct);

        Assert.NotEqual(
            first.StructuredContent!.Value.GetProperty("refund_id").GetString(),
            second.StructuredContent!.Value.GetProperty("refund_id").GetString());
        Assert.Equal(2, await _db.CountAsync("refunds"));
    }

    public static TheoryData<string, long, string> InvalidRefunds => new()
    {
        { "cust_demo00000001", 100, "requested" }, // lower case
        { "cust_DEMO0000001", 100, "requested" }, // 11 characters
        { "cust_DEMO000000011", 100, "requested" }, // 13 characters
        { "cust_DEMO00000001\n", 100, "requested" }, // trailing newline ($ in .NET would accept it)
        { "CUST_DEMO00000001", 100, "requested" },
        { "cust_DEMO00000001' OR '1'='1", 100, "requested" },
        { "", 100, "requested" },
        { "cust_ZZZZZZZZZZZZ", 100, "requested" }, // well-formed but unknown
        { AdaId, 0, "requested" },
        { AdaId, -5, "requested" },
        { AdaId, 1_000_001, "requested" },
        { AdaId, long.MaxValue, "requested" },
        { AdaId, 100, "because" },
        { AdaId, 100, "Fraud" },
        { AdaId, 100, "" },
    };

    [Theory]
    [MemberData(nameof(InvalidRefunds))]
    public async Task Create_refund_rejects_invalid_arguments_and_inserts_nothing(string customerId, long amountCents, string reason)
    {
        var result = await _mcp.CallAsync(
            "create_refund",
            new() { ["customer_id"] = customerId, ["amount_cents"] = amountCents, ["reason"] = reason },
            _ct);

        Assert.True(result.IsError);
        Assert.Null(result.StructuredContent);
        Assert.False(string.IsNullOrWhiteSpace(Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text));
        Assert.Equal(0, await _db.CountAsync("refunds"));
    }

    [Theory]
    [InlineData(1L)]
    [InlineData(1_000_000L)]
    public async Task Create_refund_accepts_the_amount_bounds(long amountCents)
    {
        var result = await _mcp.CallAsync(
            "create_refund",
            new() { ["customer_id"] = AdaId, ["amount_cents"] = amountCents, ["reason"] = "error" },
            _ct);

        Assert.NotEqual(true, result.IsError);
        Assert.Equal(1, await _db.CountAsync("refunds"));
    }

    /// <summary>Everything the client received: the serialized result plus decoded text and JSON string values.</summary>
    private static string Haystack(CallToolResult result)
    {
        var parts = new List<string> { JsonSerializer.Serialize(result, McpJsonUtilities.DefaultOptions) };
        foreach (var block in result.Content.OfType<TextContentBlock>())
        {
            parts.Add(block.Text);
            try
            {
                using var doc = JsonDocument.Parse(block.Text);
                CollectStrings(doc.RootElement, parts);
            }
            catch (JsonException)
            {
                // Plain text: already added verbatim.
            }
        }

        if (result.StructuredContent is { } structured)
        {
            CollectStrings(structured, parts);
        }

        return string.Join('\n', parts);
    }

    private static void CollectStrings(JsonElement element, List<string> sink)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    sink.Add(property.Name);
                    CollectStrings(property.Value, sink);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    CollectStrings(item, sink);
                }

                break;
            default:
                sink.Add(element.ToString());
                break;
        }
    }
}
