using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>The path a user walks: real MCP client, real HTTP on 127.0.0.1, the operator REST API.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class McpKillSwitchTests(EmbeddedHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task Lists_the_support_desk_tools_and_answers_a_read_call()
    {
        await using var client = await Host.ConnectAsync();

        // Read-only first hides create_refund; the demo token has no scope on the lab server.
        var names = (await client.ListToolsAsync()).Select(t => t.Name).Order().ToList();
        Assert.Equal(["list_orders", "lookup_customer_by_email"], names);

        var result = await client.CallToolAsync("lookup_customer_by_email", Ada);
        RefusalAssert.Succeeded(result);
        Assert.Equal("cust_DEMO00000001", result.StructuredContent!.Value.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Tenant_kill_refuses_with_KILLED_and_clearing_resumes()
    {
        await using var client = await Host.ConnectAsync();
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));

        var switchId = await Host.KillAsync(new { scope = "tenant", tenantId = "demo", reason = "incident 42: refunds misbehaving" });
        try
        {
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
            Assert.Equal("tenant", refusal.GetProperty("scope").GetString());
            Assert.Equal("incident 42: refunds misbehaving", refusal.GetProperty("reason").GetString());
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }

        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
    }

    [Fact]
    public async Task A_kill_stops_a_call_already_in_flight()
    {
        var (token, _) = await Host.MintAsync("demo", "lab-agent", scopes: ["server:lab:read"]);
        await using var client = await Host.ConnectAsync(token);
        var started = Host.Lab.SlowStarted;
        var cancelledBefore = Host.Lab.SlowCancelled;

        var call = client.CallToolAsync("lab__slow_read").AsTask();
        await Eventually.TrueAsync(() => Host.Lab.SlowStarted > started, TimeSpan.FromSeconds(10), "the slow tool to start", poll: TimeSpan.FromMilliseconds(20));

        var switchId = await Host.KillAsync(new { scope = "tool", serverId = LabTools.ServerId, toolName = "slow_read", reason = "stuck tool" });
        try
        {
            var result = await call.WaitAsync(TimeSpan.FromSeconds(10));
            var refusal = RefusalAssert.Refused(result, RefusalCodes.Killed);
            Assert.Equal("tool", refusal.GetProperty("scope").GetString());
            Assert.Equal(cancelledBefore + 1, Host.Lab.SlowCancelled);
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }
    }

    [Fact]
    public async Task Per_server_endpoint_serves_one_server_under_its_own_names()
    {
        var (token, _) = await Host.MintAsync("demo", "lab-agent", scopes: ["server:lab:read", "server:lab:write"]);
        await Host.SetModeAsync("demo", LabTools.ServerId, "read-write");
        try
        {
            await using var client = await Host.ConnectAsync(token, path: "/mcp/lab");
            var names = (await client.ListToolsAsync()).Select(t => t.Name).Order().ToList();
            Assert.Equal(["echo_action", "flaky", "hang", "slow_read"], names);

            var echo = await Host.CallConfirmedAsync(client, "echo_action", new Dictionary<string, object?> { ["text"] = "hi" });
            RefusalAssert.Succeeded(echo);
            Assert.Contains("echo: hi", RefusalAssert.Text(echo));
        }
        finally
        {
            await Host.SetModeAsync("demo", LabTools.ServerId, "read-only");
        }
    }

    [Fact]
    public async Task A_session_kill_refuses_that_session_only()
    {
        await using var first = await Host.ConnectAsync();
        await using var second = await Host.ConnectAsync();
        RefusalAssert.Succeeded(await first.CallToolAsync("lookup_customer_by_email", Ada));

        var switchId = await Host.KillAsync(new { scope = "session", sessionId = first.SessionId, reason = "looping agent" });
        try
        {
            RefusalAssert.Refused(await first.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
            RefusalAssert.Succeeded(await second.CallToolAsync("lookup_customer_by_email", Ada));
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }
    }
}
