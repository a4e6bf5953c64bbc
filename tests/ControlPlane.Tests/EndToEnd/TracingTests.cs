using System.Collections.Concurrent;
using System.Diagnostics;
using ControlPlane.Guard;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>Each guarded tools/call is one span on the "ControlPlane" source, with the guard steps as children and no secrets.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class TracingTests(EmbeddedHostFixture fixture)
{
    [Fact]
    public async Task A_guarded_call_and_a_refusal_each_produce_a_span_with_tenant_tool_server_decision_and_code()
    {
        var host = fixture.Host;
        await host.EnsureTenantAsync("traced");
        var (token, _) = await host.MintAsync("traced", "traced-agent", scopes: ["server:support-desk:read"]);

        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GuardTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        const string email = "ada@example.com";
        await using (var client = await host.ConnectAsync(token))
        {
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = email }));
            RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 1, ["reason"] = "duplicate" }), RefusalCodes.ForbiddenScope);
        }

        var calls = spans.Where(s => s.OperationName == GuardTelemetry.CallSpan && (string?)s.GetTagItem(GuardTelemetry.TenantTag) == "traced").ToList();
        var allowed = Assert.Single(calls, s => (string?)s.GetTagItem(GuardTelemetry.ToolTag) == "lookup_customer_by_email");
        Assert.Equal("support-desk", allowed.GetTagItem(GuardTelemetry.ServerTag));
        Assert.Equal("allowed", allowed.GetTagItem(GuardTelemetry.DecisionTag));
        Assert.Equal("success", allowed.GetTagItem(GuardTelemetry.OutcomeTag));
        Assert.Null(allowed.GetTagItem(GuardTelemetry.CodeTag));

        var refused = Assert.Single(calls, s => (string?)s.GetTagItem(GuardTelemetry.ToolTag) == "create_refund");
        Assert.Equal("refused", refused.GetTagItem(GuardTelemetry.DecisionTag));
        Assert.Equal(RefusalCodes.ForbiddenScope, refused.GetTagItem(GuardTelemetry.CodeTag));

        // Guard steps and the tool are children of the call's span, in the guard's order.
        var children = spans.Where(s => s.ParentSpanId == allowed.SpanId).Select(s => s.OperationName).ToList();
        Assert.Equal(["guard step kill", "guard step authentication", "guard step scope"], children.Where(n => n.StartsWith("guard step", StringComparison.Ordinal)).Take(3));
        Assert.Contains("tool support-desk", children);
        var refusedSteps = spans.Where(s => s.ParentSpanId == refused.SpanId).ToList();
        Assert.Equal(RefusalCodes.ForbiddenScope, refusedSteps.Single(s => s.GetTagItem(GuardTelemetry.CodeTag) is not null).GetTagItem(GuardTelemetry.CodeTag));

        // No arguments, results or credentials in any tag.
        foreach (var span in calls.Concat(spans.Where(s => calls.Any(c => c.SpanId == s.ParentSpanId))))
        {
            foreach (var (_, value) in span.TagObjects)
            {
                var text = value?.ToString() ?? "";
                Assert.DoesNotContain(email, text);
                Assert.DoesNotContain(token, text);
                Assert.DoesNotContain("cust_", text);
            }
        }
    }
}
