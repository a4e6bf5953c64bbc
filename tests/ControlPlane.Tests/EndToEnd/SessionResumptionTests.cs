using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// An MCP session outlives the live state its silo holds for it: parked after it idles, it is resumed by its next
/// request, and a session opened on one silo carries on on another (a silo restart, a load balancer without
/// affinity). Only the token that opened it may resume it, on the endpoint it was opened on, and never after the
/// client ended it. Real SDK clients over real HTTP.
/// </summary>
public sealed class SessionResumptionTests
{
    // How long a session may take to leave a silo's live state: the SDK looks for idle sessions every 5 s.
    private static readonly TimeSpan SessionsLeave = TimeSpan.FromSeconds(60);

    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    private static readonly Dictionary<string, string?> ParkFast = new() { ["ControlPlane:Sessions:ParkAfter"] = "00:00:01" };

    [Fact]
    public async Task An_idle_session_is_parked_then_resumed_by_its_next_call_and_its_kill_switch_still_holds()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: ParkFast);
        var registry = host.Services.GetRequiredService<SessionRegistry>();

        // Without the standalone GET stream nothing holds the session open between calls, as with request/response agents.
        await using var client = await host.ConnectAsync(getStream: false);
        var sessionId = client.SessionId!;
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
        Assert.True(registry.IsLive(sessionId));

        await Eventually.TrueAsync(() => !registry.IsLive(sessionId), SessionsLeave, "the idle session to be parked");
        var resumedBefore = registry.ResumedCount;

        // Parked, the session is still the session: its own kill switch refuses the resumed call, and clearing it lets calls through.
        var switchId = await host.KillAsync(new { scope = "session", sessionId, reason = "parked session drill" });
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
        Assert.True(registry.IsLive(sessionId));
        Assert.Equal(resumedBefore + 1, registry.ResumedCount);
        Assert.Equal(sessionId, client.SessionId);
        await host.ClearAsync(switchId);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));

        using var admin = host.OperatorHttp();
        var calls = (await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?sessionId={sessionId}&tool=lookup_customer_by_email"))
            .GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(3, calls.Count);
        Assert.All(calls, c => Assert.Equal("demo-agent", c.GetProperty("agentId").GetString()));
    }

    [Fact]
    public async Task A_session_opened_on_one_silo_carries_on_on_another_for_its_own_token_only()
    {
        await using var first = await ControlPlaneTestHost.StartAsync(settings: ParkFast);
        // The second silo keeps sessions live as long as the test needs: parked there, the intruder would get 404, not 403.
        await using var second = await ControlPlaneTestHost.StartAsync(dataDir: first.DataDir, primarySiloPort: first.SiloPort);

        var opened = await McpClient.CreateAsync(first.Transport(getStream: false, ownsSession: false));
        var sessionId = opened.SessionId!;
        RefusalAssert.Succeeded(await opened.CallToolAsync("lookup_customer_by_email", Ada));
        var resume = new ResumeClientSessionOptions
        {
            ServerCapabilities = opened.ServerCapabilities!,
            ServerInfo = opened.ServerInfo!,
            NegotiatedProtocolVersion = opened.NegotiatedProtocolVersion,
        };
        await opened.DisposeAsync();
        await Eventually.TrueAsync(() => !first.Services.GetRequiredService<SessionRegistry>().IsLive(sessionId), SessionsLeave, "the first silo to park the session");

        // Another token of the same agent, or the same token on another endpoint, does not get the session back.
        var (otherToken, _) = await first.MintAsync("demo", "demo-agent", userId: "demo-user");
        await AssertSessionNotFoundAsync(first, otherToken, "/mcp", sessionId, resume);
        await AssertSessionNotFoundAsync(first, null, "/mcp/support-desk", sessionId, resume);

        // Its own token reaches it through the other silo, which has never seen it.
        await using (var moved = await McpClient.ResumeSessionAsync(second.Transport(getStream: false, knownSessionId: sessionId, ownsSession: false), resume))
        {
            RefusalAssert.Succeeded(await moved.CallToolAsync("lookup_customer_by_email", Ada));
            Assert.True(second.Services.GetRequiredService<SessionRegistry>().IsLive(sessionId));
            Assert.Contains(await moved.ListToolsAsync(), t => t.Name == "lookup_customer_by_email");
        }

        // Where it is live, another token is turned away by the SDK's own binding of a session to its user.
        await using (var intruder = await McpClient.ResumeSessionAsync(second.Transport(otherToken, getStream: false, knownSessionId: sessionId, ownsSession: false), resume))
        {
            var refused = await Assert.ThrowsAsync<HttpRequestException>(async () => await intruder.CallToolAsync("lookup_customer_by_email", Ada));
            Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        }

        // Ending the session (DELETE) ends it everywhere: no silo resumes it afterwards.
        using (var http = second.Http(second.Credentials.AgentToken))
        {
            using var delete = new HttpRequestMessage(HttpMethod.Delete, "/mcp");
            delete.Headers.Add("Mcp-Session-Id", sessionId);
            Assert.True((await http.SendAsync(delete)).IsSuccessStatusCode);
        }

        await Eventually.TrueAsync(() => !second.Services.GetRequiredService<SessionRegistry>().IsLive(sessionId), SessionsLeave, "the deleted session to leave the second silo");
        await AssertSessionNotFoundAsync(first, null, "/mcp", sessionId, resume);
        await AssertSessionNotFoundAsync(second, null, "/mcp", sessionId, resume);

        using var admin = first.OperatorHttp();
        var calls = (await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?sessionId={sessionId}&tool=lookup_customer_by_email"))
            .GetProperty("items").EnumerateArray().ToList();
        Assert.Equal(2, calls.Count);
    }

    [Fact]
    public async Task A_session_survives_the_restart_of_the_silo_that_opened_it()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-resume-" + Guid.NewGuid().ToString("N")[..12]);
        string sessionId;
        ResumeClientSessionOptions resume;
        await using (var host = await ControlPlaneTestHost.StartAsync(dataDir))
        {
            var client = await McpClient.CreateAsync(host.Transport(getStream: false, ownsSession: false));
            sessionId = client.SessionId!;
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
            resume = new ResumeClientSessionOptions { ServerCapabilities = client.ServerCapabilities!, ServerInfo = client.ServerInfo! };
            await client.DisposeAsync();
        }

        await using var restarted = await ControlPlaneTestHost.StartAsync(dataDir);
        await using var again = await McpClient.ResumeSessionAsync(restarted.Transport(getStream: false, knownSessionId: sessionId), resume);
        RefusalAssert.Succeeded(await again.CallToolAsync("lookup_customer_by_email", Ada));
        Assert.Equal(sessionId, again.SessionId);
    }

    [Fact]
    public async Task Session_records_past_retention_are_deleted_on_schedule_and_such_a_session_is_not_resumed()
    {
        var settings = new Dictionary<string, string?>(ParkFast) { ["ControlPlane:Sessions:RecordRetention"] = "00:00:02" };
        await using var host = await ControlPlaneTestHost.StartAsync(settings: settings);
        var registry = host.Services.GetRequiredService<SessionRegistry>();
        var grains = host.Services.GetRequiredService<IGrainFactory>();

        // One session its client abandons without closing, one it closes.
        var abandoned = await McpClient.CreateAsync(host.Transport(getStream: false, ownsSession: false));
        var abandonedId = abandoned.SessionId!;
        RefusalAssert.Succeeded(await abandoned.CallToolAsync("lookup_customer_by_email", Ada));
        var resume = new ResumeClientSessionOptions { ServerCapabilities = abandoned.ServerCapabilities!, ServerInfo = abandoned.ServerInfo! };
        await abandoned.DisposeAsync();
        string closedId;
        await using (var closed = await host.ConnectAsync(getStream: false))
        {
            closedId = closed.SessionId!;
            RefusalAssert.Succeeded(await closed.CallToolAsync("lookup_customer_by_email", Ada));
        }

        await Eventually.TrueAsync(() => !registry.IsLive(abandonedId) && !registry.IsLive(closedId), SessionsLeave, "both sessions to leave the silo");

        // The host's own scheduler configured the retention grain; runs delete both records once they are 2 s old.
        var retention = grains.GetGrain<ControlPlane.Sessions.ISessionRecordRetentionGrain>(ControlPlane.Sessions.ISessionRecordRetentionGrain.Singleton);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        long deleted = 0;
        while (deleted < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for retention to delete both records ({deleted} so far).");
            await Task.Delay(500);
            deleted += await retention.RunAsync();
        }

        Assert.Equal(2, deleted);
        Assert.Null(await grains.GetGrain<ControlPlane.Sessions.ISessionGrain>(abandonedId).GetAsync());
        Assert.Null(await grains.GetGrain<ControlPlane.Sessions.ISessionGrain>(closedId).GetAsync());

        // Its record gone, the abandoned session is not resumed: its client gets 404 and starts a new session, which works.
        await AssertSessionNotFoundAsync(host, null, "/mcp", abandonedId, resume);
        await using var fresh = await host.ConnectAsync(getStream: false);
        RefusalAssert.Succeeded(await fresh.CallToolAsync("lookup_customer_by_email", Ada));
    }

    [Fact]
    public async Task A_session_in_use_on_its_silo_has_its_record_refreshed_off_the_call_path_at_most_once_per_interval()
    {
        await using var host = await ControlPlaneTestHost.StartAsync();
        var registry = host.Services.GetRequiredService<SessionRegistry>();
        await using var client = await host.ConnectAsync(getStream: false);
        var sessionId = client.SessionId!;
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
        var opened = await RecordWrittenAtAsync(host, sessionId);
        Assert.NotNull(opened);

        // Within the interval, calls leave the record alone.
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
        Assert.Equal(opened, await RecordWrittenAtAsync(host, sessionId));

        // Past it, the next call has the record written again (in the background), so retention keeps the session.
        registry.RecordRefreshInterval = TimeSpan.FromMilliseconds(200);
        await Task.Delay(300);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string? refreshed;
        while ((refreshed = await RecordWrittenAtAsync(host, sessionId)) == opened)
        {
            Assert.True(DateTime.UtcNow < deadline, "The session's record was not refreshed.");
            await Task.Delay(100);
        }

        Assert.True(string.CompareOrdinal(refreshed, opened) > 0, $"{refreshed} should be later than {opened}");
        registry.RecordRefreshInterval = ControlPlane.Sessions.ISessionGrain.RecordRefreshInterval;
    }

    /// <summary>When the session's record was last written, as the embedded grain store has it.</summary>
    private static async Task<string?> RecordWrittenAtAsync(ControlPlaneTestHost host, string sessionId)
    {
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(host.DataDir, "grains.db")};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT updated_at FROM grain_state WHERE state_name = 'session' AND grain_id LIKE '%' || $id";
        command.Parameters.AddWithValue("$id", sessionId);
        return await command.ExecuteScalarAsync() as string;
    }

    private static async Task AssertSessionNotFoundAsync(ControlPlaneTestHost host, string? token, string path, string sessionId, ResumeClientSessionOptions resume)
    {
        await using var client = await McpClient.ResumeSessionAsync(host.Transport(token, path, getStream: false, knownSessionId: sessionId, ownsSession: false), resume);
        var refused = await Assert.ThrowsAsync<HttpRequestException>(async () => await client.CallToolAsync("lookup_customer_by_email", Ada));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, refused.StatusCode);
        Assert.False(host.Services.GetRequiredService<SessionRegistry>().IsLive(sessionId));
    }
}
