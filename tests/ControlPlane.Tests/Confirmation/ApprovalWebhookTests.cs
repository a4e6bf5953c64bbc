using System.Collections.Concurrent;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Tests.Confirmation;

/// <summary>A pending approval reaches a Slack-compatible webhook with a link, and without secrets.</summary>
public sealed class ApprovalWebhookTests
{
    [Fact]
    public async Task A_new_approval_request_is_posted_to_the_webhook()
    {
        var received = new ConcurrentQueue<JsonElement>();
        var port = FreePorts.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        await using var receiver = builder.Build();
        receiver.MapPost("/hook", async (HttpContext http) =>
        {
            received.Enqueue(await JsonSerializer.DeserializeAsync<JsonElement>(http.Request.Body));
            return Results.Ok();
        });
        await receiver.StartAsync();

        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Confirmation:WebhookUrl"] = $"http://127.0.0.1:{port}/hook",
            ["ControlPlane:Confirmation:ApprovalLinkBase"] = "http://127.0.0.1:5080",
        });
        await host.SetModeAsync("demo", "support-desk", "read-write");
        await using var client = await host.ConnectAsync();
        var refusal = RefusalAssert.Refused(
            await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 777, ["reason"] = "error" }),
            RefusalCodes.RequiresConfirmation);
        var approvalId = refusal.GetProperty("approval_id").GetString()!;

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (received.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(50);
        var message = Assert.Single(received);
        var text = message.GetProperty("text").GetString()!;
        Assert.Contains(approvalId, text);
        Assert.Contains("support-desk/create_refund", text);
        Assert.Contains($"http://127.0.0.1:5080/api/v1/approvals/{approvalId}", text);
        Assert.DoesNotContain(host.Credentials.AgentToken, message.GetRawText());
        Assert.Equal(approvalId, message.GetProperty("approval_id").GetString());
    }
}
