using System.Net.Http.Json;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// What tools/list shows and advertises follows the tool policy, so a change of it reaches connected clients as
/// notifications/tools/list_changed: a client that kept the old list (and its output schemas) would otherwise miss new
/// action tools, or validate results against a schema a new projection no longer matches.
/// </summary>
public sealed class ToolPolicyChangeTests(EmbeddedHostFixture fixture) : IClassFixture<EmbeddedHostFixture>
{
    [Fact]
    public async Task A_mode_change_and_a_projection_each_tell_connected_clients_to_list_again()
    {
        var host = fixture.Host;
        await using var client = await host.ConnectAsync();
        var changes = 0;
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = client.RegisterNotificationHandler(NotificationMethods.ToolListChangedNotification, (_, _) =>
        {
            Interlocked.Increment(ref changes);
            changed.TrySetResult();
            return default;
        });
        Assert.DoesNotContain("create_refund", (await client.ListToolsAsync()).Select(t => t.Name));

        await host.SetModeAsync("demo", "support-desk", "read-write");
        await changed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("create_refund", (await client.ListToolsAsync()).Select(t => t.Name));

        changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var before = Volatile.Read(ref changes);
        using var admin = host.OperatorHttp();
        var set = await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { fields = new[] { "/orders/*/id" }, reason = "narrow" });
        Assert.True(set.IsSuccessStatusCode, await set.Content.ReadAsStringAsync());
        try
        {
            await changed.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(Volatile.Read(ref changes) > before);
            var listed = Assert.Single(await client.ListToolsAsync(), t => t.Name == "list_orders");
            // The advertised schema now describes the projected result.
            Assert.DoesNotContain("total_cents", listed.ProtocolTool.OutputSchema?.GetRawText() ?? "", StringComparison.Ordinal);
        }
        finally
        {
            await admin.PutAsJsonAsync("/api/v1/servers/support-desk/tools/list_orders/projection", new { remove = true, reason = "test over" });
            await host.SetModeAsync("demo", "support-desk", "read-only");
        }
    }
}
