using System.ComponentModel;
using System.Text.Json.Serialization;

namespace ControlPlane.SupportDesk;

// Wire names are pinned with [JsonPropertyName] so the output schema and the payload stay snake_case
// whatever naming policy the hosting serializer options carry.

/// <summary>The deliberately narrow view of a customer that <c>lookup_customer_by_email</c> returns.</summary>
[Description("Non-sensitive summary of a support-desk customer.")]
public sealed record CustomerSummary(
    [property: JsonPropertyName("id"), Description("Customer id, e.g. cust_DEMO00000001.")] string Id,
    [property: JsonPropertyName("plan"), Description("Subscription plan.")] string Plan,
    [property: JsonPropertyName("region"), Description("Data-residency region.")] string Region,
    [property: JsonPropertyName("signup_date"), Description("Signup date (yyyy-MM-dd).")] string SignupDate,
    [property: JsonPropertyName("has_active_subscription"), Description("Whether a subscription is currently active.")] bool HasActiveSubscription,
    [property: JsonPropertyName("churn_risk_band"), Description("Churn risk band: low, medium or high.")] string ChurnRiskBand);

/// <summary>One order line as returned by <c>list_orders</c>.</summary>
public sealed record OrderSummary(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("created_at"), Description("ISO-8601 UTC timestamp.")] string CreatedAt,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("total_cents")] long TotalCents,
    [property: JsonPropertyName("currency")] string Currency);

/// <summary>
/// Result of <c>list_orders</c>. Wrapped in an object because structured content must be a JSON object
/// for clients on protocol versions before 2026-07-28.
/// </summary>
public sealed record OrderList(
    [property: JsonPropertyName("customer_id")] string CustomerId,
    [property: JsonPropertyName("orders"), Description("Orders, newest first.")] IReadOnlyList<OrderSummary> Orders);

/// <summary>Result of <c>create_refund</c>.</summary>
public sealed record RefundReceipt(
    [property: JsonPropertyName("refund_id")] string RefundId,
    [property: JsonPropertyName("customer_id")] string CustomerId,
    [property: JsonPropertyName("amount_cents")] long AmountCents,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("status")] string Status);

/// <summary>Source-generated metadata so tool results serialise without reflection.</summary>
[JsonSerializable(typeof(CustomerSummary))]
[JsonSerializable(typeof(OrderList))]
[JsonSerializable(typeof(RefundReceipt))]
internal sealed partial class SupportDeskJsonContext : JsonSerializerContext;
