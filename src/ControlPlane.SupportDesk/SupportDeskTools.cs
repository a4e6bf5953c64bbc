using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using System.Text.RegularExpressions;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.SupportDesk;

/// <summary>
/// The support desk's MCP tools. Each tool returns a <see cref="CallToolResult"/> itself rather than a bare record:
/// that is the only way to report "not found" or invalid input as an <c>isError</c> result (instead of an exception)
/// when the host invokes <see cref="McpServerTool.InvokeAsync"/> directly. <c>OutputSchemaType</c> still advertises
/// the typed output schema, and successful results carry both <c>structuredContent</c> and the same JSON as text.
/// </summary>
/// <remarks>
/// Parameter names are snake_case because the SDK uses them verbatim as the JSON argument names on the wire.
/// The data annotations only shape the advertised input schema (the SDK does not enforce them), so every tool
/// re-validates its arguments in code.
/// </remarks>
[McpServerToolType]
public sealed partial class SupportDeskTools(SupportDeskDatabase database)
{
    /// <summary>JSON Schema (ECMA-262) form of the customer id pattern, advertised to clients.</summary>
    public const string CustomerIdPattern = "^cust_[A-Z0-9]{12}$";
    public const long MinRefundCents = 1;
    public const long MaxRefundCents = 1_000_000;
    public const int MaxOrderLimit = 100;
    private const int MaxEmailLength = 254;

    /// <summary>Refund reasons the desk accepts (case-sensitive).</summary>
    public static IReadOnlyList<string> RefundReasons { get; } = ["duplicate", "fraud", "requested", "error"];

    [McpServerTool(Name = "lookup_customer_by_email", Title = "Look up customer by email", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(CustomerSummary))]
    [Description("Finds a customer by email address and returns a non-sensitive summary: id, plan, region, signup date, subscription status and churn risk band.")]
    public async Task<CallToolResult> LookupCustomerByEmailAsync(
        [Description("The customer's email address (case-insensitive)."), EmailAddress, MaxLength(MaxEmailLength)] string email,
        CancellationToken cancellationToken = default)
    {
        var normalized = email?.Trim() ?? string.Empty;
        if (normalized.Length is 0 or > MaxEmailLength || !normalized.Contains('@', StringComparison.Ordinal))
        {
            return Error("email must be a non-empty email address of at most 254 characters.");
        }

        var row = await database.FindCustomerRowByEmailAsync(normalized, cancellationToken).ConfigureAwait(false);
        if (row is null)
        {
            return Error($"No customer found with email '{normalized}'.");
        }

        // The projection: of the ~110 columns just read, only these six leave the tool.
        var summary = new CustomerSummary(
            Id: (string)row["id"]!,
            Plan: (string)row["plan"]!,
            Region: (string)row["region"]!,
            SignupDate: (string)row["signup_date"]!,
            HasActiveSubscription: Convert.ToInt64(row["has_active_subscription"], CultureInfo.InvariantCulture) != 0,
            ChurnRiskBand: (string)row["churn_risk_band"]!);

        return Success(summary, SupportDeskJsonContext.Default.CustomerSummary);
    }

    [McpServerTool(Name = "list_orders", Title = "List customer orders", ReadOnly = true, Destructive = false, Idempotent = true, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(OrderList))]
    [Description("Lists a customer's orders, newest first: id, creation time, status, total in minor units and currency.")]
    public async Task<CallToolResult> ListOrdersAsync(
        [Description("Customer id, e.g. cust_DEMO00000001."), RegularExpression(CustomerIdPattern)] string customer_id,
        [Description("Maximum number of orders to return (1-100)."), Range(1, MaxOrderLimit)] int limit = 20,
        CancellationToken cancellationToken = default)
    {
        if (!IsValidCustomerId(customer_id))
        {
            return Error($"customer_id must match {CustomerIdPattern}.");
        }

        if (limit is < 1 or > MaxOrderLimit)
        {
            return Error($"limit must be between 1 and {MaxOrderLimit}.");
        }

        if (!await database.CustomerExistsAsync(customer_id, cancellationToken).ConfigureAwait(false))
        {
            return Error($"No customer found with id '{customer_id}'.");
        }

        var orders = await database.ListOrdersAsync(customer_id, limit, cancellationToken).ConfigureAwait(false);
        return Success(new OrderList(customer_id, orders), SupportDeskJsonContext.Default.OrderList);
    }

    [McpServerTool(Name = "create_refund", Title = "Issue a refund", ReadOnly = false, Destructive = true, Idempotent = false, OpenWorld = false,
        UseStructuredContent = true, OutputSchemaType = typeof(RefundReceipt))]
    [Description("Issues a refund to a customer. Moves money: each call creates a new refund.")]
    public async Task<CallToolResult> CreateRefundAsync(
        [Description("Customer id, e.g. cust_DEMO00000001."), RegularExpression(CustomerIdPattern)] string customer_id,
        [Description("Refund amount in minor units (cents), 1 to 1000000."), Range(MinRefundCents, MaxRefundCents)] long amount_cents,
        [Description("Why the refund is issued."), AllowedValues("duplicate", "fraud", "requested", "error")] string reason,
        RequestContext<CallToolRequestParams>? context = null,
        CancellationToken cancellationToken = default)
    {
        // Defence in depth: the schema above is advisory, so nothing reaches the database unchecked.
        if (!IsValidCustomerId(customer_id))
        {
            return Error($"customer_id must match {CustomerIdPattern}.");
        }

        if (amount_cents is < MinRefundCents or > MaxRefundCents)
        {
            return Error($"amount_cents must be between {MinRefundCents} and {MaxRefundCents}.");
        }

        if (reason is null || !RefundReasons.Contains(reason, StringComparer.Ordinal))
        {
            return Error($"reason must be one of: {string.Join(", ", RefundReasons)}.");
        }

        var receipt = await database.CreateRefundAsync(
            customer_id,
            amount_cents,
            reason,
            requestId: context?.JsonRpcRequest?.Id.ToString(),
            clientName: context?.Server?.ClientInfo?.Name,
            cancellationToken).ConfigureAwait(false);

        return receipt is null
            ? Error($"No customer found with id '{customer_id}'.")
            : Success(receipt, SupportDeskJsonContext.Default.RefundReceipt);
    }

    internal static bool IsValidCustomerId(string? customerId) => customerId is not null && CustomerIdRegex().IsMatch(customerId);

    // \z rather than $: .NET's $ also matches before a trailing newline.
    [GeneratedRegex(@"^cust_[A-Z0-9]{12}\z", RegexOptions.CultureInvariant)]
    private static partial Regex CustomerIdRegex();

    private static CallToolResult Success<T>(T value, JsonTypeInfo<T> typeInfo)
    {
        var element = JsonSerializer.SerializeToElement(value, typeInfo);
        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = element.GetRawText() }],
            StructuredContent = element,
        };
    }

    private static CallToolResult Error(string message) => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = message }],
    };
}
