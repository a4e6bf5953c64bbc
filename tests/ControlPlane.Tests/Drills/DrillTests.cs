using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.GuardState;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Drills;

public sealed class DrillHostFixture : IAsyncLifetime
{
    public ControlPlaneTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneTestHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>
/// Kill-switch drills through the REST API against a real host: each drill sets a real switch on a synthetic target,
/// makes a real guarded MCP call that must be refused with KILLED, clears the switch and checks calls resume.
/// </summary>
public sealed class DrillTests(DrillHostFixture fixture) : IClassFixture<DrillHostFixture>
{
    [Theory]
    [InlineData("session")]
    [InlineData("user")]
    [InlineData("agent")]
    [InlineData("tenant")]
    [InlineData("tool")]
    [InlineData("server")]
    [InlineData("global")]
    public async Task A_drill_at_each_level_passes_end_to_end_and_leaves_no_switch_behind(string level)
    {
        var host = fixture.Host;
        using var http = host.OperatorHttp();

        var result = await RunAsync(http, level, confirmGlobal: level == "global");

        Assert.True(result.GetProperty("passed").GetBoolean(), $"Drill failed: {result}");
        var steps = result.GetProperty("steps").EnumerateArray().Select(s => s.GetString()).ToList();
        Assert.Contains($"probe refused with KILLED at scope {level}", steps);
        Assert.Contains("switch cleared", steps);
        Assert.Contains("probe allowed after the clear", steps);
        Assert.Empty(await ActiveSwitchesAsync(http));

        // Recorded in the audit of the drill tenant, and listed as fresh.
        var drillId = result.GetProperty("id").GetString();
        var audit = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=cp-drill&limit=200");
        var entry = audit.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetString() == drillId);
        Assert.Equal("drill/kill-switch", entry.GetProperty("kind").GetString());
        Assert.Equal("success", entry.GetProperty("outcome").GetString());

        var status = (await ListAsync(http)).Single(s => s.GetProperty("level").GetString() == level);
        Assert.False(status.GetProperty("stale").GetBoolean());
        Assert.Equal(drillId, status.GetProperty("lastPassed").GetProperty("id").GetString());
        Assert.Equal(level != "global", status.GetProperty("scheduled").GetBoolean());

        // The drill's calls went through the whole guard and were audited like any agent's.
        var refused = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=cp-drill&decision=refused&limit=200");
        Assert.Contains(refused.GetProperty("items").EnumerateArray(), i => i.GetProperty("code").GetString() == "KILLED");
    }

    [Fact]
    public async Task A_global_drill_needs_an_explicit_confirmation_and_bad_levels_are_refused()
    {
        using var http = fixture.Host.OperatorHttp();
        var global = await http.PostAsJsonAsync("/api/v1/drills", new { level = "global" });
        Assert.Equal(HttpStatusCode.BadRequest, global.StatusCode);
        Assert.Contains("confirmGlobal", await global.Content.ReadAsStringAsync());

        var bad = await http.PostAsJsonAsync("/api/v1/drills", new { level = "planet" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Empty(await ActiveSwitchesAsync(http));

        using var anonymous = fixture.Host.Http();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("/api/v1/drills", new { level = "tenant" })).StatusCode);
    }

    [Fact]
    public async Task A_drill_never_clears_a_switch_an_operator_set_on_its_target()
    {
        var host = fixture.Host;
        using var http = host.OperatorHttp();
        var real = await host.KillAsync(new { scope = "agent", tenantId = "cp-drill", agentId = "drill-agent", reason = "someone is investigating" });
        try
        {
            var result = await RunAsync(http, "agent");
            Assert.False(result.GetProperty("passed").GetBoolean());
            Assert.Contains(await ActiveSwitchesAsync(http), s => s.GetProperty("id").GetString() == real);
        }
        finally
        {
            await host.ClearAsync(real);
        }
    }

    internal static async Task<JsonElement> RunAsync(HttpClient http, string level, bool confirmGlobal = false)
    {
        var response = await http.PostAsJsonAsync("/api/v1/drills", new { level, confirmGlobal });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"POST /api/v1/drills: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    internal static async Task<List<JsonElement>> ListAsync(HttpClient http) =>
        [.. (await http.GetFromJsonAsync<JsonElement>("/api/v1/drills")).GetProperty("items").EnumerateArray()];

    internal static async Task<List<JsonElement>> ActiveSwitchesAsync(HttpClient http) =>
        [.. (await http.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches")).GetProperty("items").EnumerateArray()];
}

/// <summary>Drills against hosts that are broken or scheduled: failures are caught and recorded; the schedule runs by itself.</summary>
public sealed class DrillFailureAndScheduleTests
{
    [Fact]
    public async Task A_drill_on_a_silo_that_no_longer_receives_kill_switches_fails_and_records_the_failure()
    {
        // The fault a drill exists to catch: switches are set (durable, acknowledged) but this silo never hears of them,
        // because its push receiver drops them and its version poll is set far too slow. The rest is the real host.
        await using var host = await ControlPlaneTestHost.StartAsync(
            settings: new Dictionary<string, string?>
            {
                ["ControlPlane:GuardState:PollInterval"] = "00:10:00",
                ["ControlPlane:GuardState:StaleAfter"] = "00:20:00",
            },
            configureServices: services => services.AddSingleton<IGuardStateListener, DeafListener>());
        using var http = host.OperatorHttp();

        var result = await DrillTests.RunAsync(http, "tenant");

        Assert.False(result.GetProperty("passed").GetBoolean());
        Assert.Contains("kill path at this level is broken", result.GetProperty("failure").GetString());
        Assert.Empty(await DrillTests.ActiveSwitchesAsync(http));

        var audit = await http.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=cp-drill&outcome=error&limit=50");
        var entry = audit.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("id").GetString() == result.GetProperty("id").GetString());
        Assert.Equal("drill_failed", entry.GetProperty("errorType").GetString());

        var status = (await DrillTests.ListAsync(http)).Single(s => s.GetProperty("level").GetString() == "tenant");
        Assert.True(status.GetProperty("stale").GetBoolean(), "A level that never passed a drill is stale.");
        Assert.False(status.GetProperty("last").GetProperty("passed").GetBoolean());
    }

    [Fact]
    public async Task The_scheduler_drills_every_level_but_global_by_itself()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Drills:Interval"] = "00:01:00",
            ["ControlPlane:Drills:FirstRunDelay"] = "00:00:01",
        });
        using var http = host.OperatorHttp();

        var deadline = DateTime.UtcNow.AddSeconds(90);
        List<JsonElement> statuses;
        while (true)
        {
            statuses = await DrillTests.ListAsync(http);
            if (statuses.Where(s => s.GetProperty("scheduled").GetBoolean()).All(s => s.TryGetProperty("last", out _))) break;
            Assert.True(DateTime.UtcNow < deadline, "The scheduled drills did not all run within 90 s: " + string.Join(", ", statuses));
            await Task.Delay(500);
        }

        foreach (var status in statuses.Where(s => s.GetProperty("scheduled").GetBoolean()))
        {
            var last = status.GetProperty("last");
            Assert.True(last.GetProperty("passed").GetBoolean(), $"Scheduled drill failed: {status}");
            Assert.Equal("scheduler", last.GetProperty("ranBy").GetString());
        }

        var global = statuses.Single(s => s.GetProperty("level").GetString() == "global");
        Assert.False(global.TryGetProperty("last", out _));
        Assert.True(global.GetProperty("stale").GetBoolean());
        Assert.Empty(await DrillTests.ActiveSwitchesAsync(http));
    }
}

/// <summary>A silo's push receiver that has stopped applying what it is sent.</summary>
internal sealed class DeafListener : IGuardStateListener
{
    public long Apply(GuardStateSnapshot snapshot) => 0;

    public GuardStateHeld Describe() => new(default, Loaded: true, Fresh: true, SecondsSinceConfirmed: 0);
}
