using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Security;

/// <summary>A wall clock a test can set anywhere, backwards included (FakeTimeProvider refuses to go back).</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public DateTimeOffset Now
    {
        get => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);
        set => Interlocked.Exchange(ref _ticks, value.UtcTicks);
    }

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Holds a token grain's expiry record until released, to open the window between a silo's refusal and the record.</summary>
public sealed class ExpiryRecordGate : IIncomingGrainCallFilter
{
    private volatile TaskCompletionSource? _held;

    public void Hold() => _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => Interlocked.Exchange(ref _held, null)?.TrySetResult();

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.Name == nameof(ControlPlane.Tokens.IAgentTokenGrain.MarkExpiredAsync) && _held is { } held)
        {
            await held.Task;
        }

        await context.Invoke();
    }
}

public sealed class ClockEdgeFixture : IAsyncLifetime
{
    public ManualClock Clock { get; } = new(DateTimeOffset.UtcNow);

    public ExpiryRecordGate ExpiryRecords { get; } = new();

    public ControlPlaneTestHost Host { get; private set; } = null!;

    /// <summary>A demo token that may call the lab's action tool.</summary>
    public string LabToken { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = await ControlPlaneTestHost.StartAsync(configureServices: services =>
        {
            services.AddKeyedSingleton<TimeProvider>(ControlPlaneClock.ServiceKey, Clock);
            services.AddSingleton<IIncomingGrainCallFilter>(ExpiryRecords);
        });
        await Host.SetModeAsync("demo", LabTools.ServerId, "read-write");
        (LabToken, _) = await Host.MintAsync("demo", "clock-lab-agent", scopes: ["server:lab:read", "server:lab:write"]);
    }

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>
/// Expiry edges on the control plane's clock: one tick before, exactly at and after expiry of agent tokens,
/// approvals and confirmation tokens, an approval expiring between approve and redeem, and the clock
/// moving backwards.
/// </summary>
public sealed class ClockEdgeTests(ClockEdgeFixture fixture) : IClassFixture<ClockEdgeFixture>
{
    private static readonly TimeSpan Tick = TimeSpan.FromTicks(1);

    private ControlPlaneTestHost Host => fixture.Host;

    private ManualClock Clock => fixture.Clock;

    private static readonly Dictionary<string, object?> Lookup = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task An_agent_token_works_one_tick_before_expiry_and_is_refused_exactly_at_it()
    {
        var start = Clock.Now;
        var (token, _) = await Host.MintAsync("demo", "clock-agent", scopes: ["server:support-desk:read"], expiresInSeconds: 60);
        var expiresAt = start + TimeSpan.FromSeconds(60);
        await using var client = await Host.ConnectAsync(token);

        Clock.Now = expiresAt - Tick;
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));

        Clock.Now = expiresAt;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);

        Clock.Now = expiresAt + Tick;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);

        // A new session with the expired token is a 401 at the door.
        using var http = Host.Http(token);
        var opening = await http.PostAsync("/mcp", new StringContent(
            """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}""",
            System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, opening.StatusCode);

        Clock.Now = start;
    }

    [Fact]
    public async Task Once_seen_expired_an_agent_token_stays_expired_when_the_clock_steps_back()
    {
        var start = Clock.Now;
        var (token, id) = await Host.MintAsync("demo", "clock-step-agent", scopes: ["server:support-desk:read"], expiresInSeconds: 60);
        var expiresAt = start + TimeSpan.FromSeconds(60);
        await using var client = await Host.ConnectAsync(token);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));

        Clock.Now = expiresAt;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);
        var recorded = await RecordedExpiryAsync(id);
        Assert.Equal(expiresAt, recorded);

        // Stepped back past the expiry (an NTP correction, a VM restored from a snapshot): still expired, mid-session
        // and for a new session, even on a silo that has never cached the token (the record is persisted).
        Clock.Now = start;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);
        using var http = Host.Http(token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/mcp", new StringContent(Initialize, System.Text.Encoding.UTF8, "application/json"))).StatusCode);
        var stored = await Host.Services.GetRequiredService<IGrainFactory>().GetGrain<ControlPlane.Tokens.IAgentTokenGrain>(id).GetAsync();
        Assert.True(stored!.IsExpired(start));
    }

    [Fact]
    public async Task The_silo_that_saw_a_token_expire_refuses_it_when_the_clock_steps_back_before_the_grain_has_recorded_it()
    {
        var start = Clock.Now;
        var (token, id) = await Host.MintAsync("demo", "clock-step-now-agent", scopes: ["server:support-desk:read"], expiresInSeconds: 60);
        await using var client = await Host.ConnectAsync(token);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));

        fixture.ExpiryRecords.Hold();
        try
        {
            Clock.Now = start + TimeSpan.FromSeconds(60);
            RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);

            // The grain has not recorded the expiry yet; this silo's own mark holds.
            Clock.Now = start;
            for (var call = 0; call < 3; call++)
            {
                RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);
            }
        }
        finally
        {
            fixture.ExpiryRecords.Release();
        }

        Assert.Equal(start + TimeSpan.FromSeconds(60), await RecordedExpiryAsync(id));
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Unauthenticated);
    }

    [Fact]
    public async Task An_expiry_reported_by_a_clock_far_ahead_is_not_recorded_but_small_skew_is()
    {
        var start = Clock.Now;
        var grains = Host.Services.GetRequiredService<IGrainFactory>();
        var (token, id) = await Host.MintAsync("demo", "clock-skew-agent", scopes: ["server:support-desk:read"], expiresInSeconds: 3600);
        var expiresAt = start + TimeSpan.FromHours(1);

        // A silo an hour ahead says "expired": the token grain's clock disagrees by far more than the allowed skew.
        var early = await grains.GetGrain<ControlPlane.Tokens.IAgentTokenGrain>(id).MarkExpiredAsync(expiresAt);
        Assert.Null(early!.ExpiredAt);
        await using (var client = await Host.ConnectAsync(token))
        {
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));
        }

        // Within the skew (the grain's clock a minute short of the expiry): recorded, so every silo that loads the
        // token from now on finds it expired whatever its clock says. (A silo that has it cached already expires it
        // by its own clock a minute later: the skew tolerated.)
        Clock.Now = expiresAt - TimeSpan.FromMinutes(1);
        var close = await grains.GetGrain<ControlPlane.Tokens.IAgentTokenGrain>(id).MarkExpiredAsync(expiresAt);
        Assert.Equal(expiresAt, close!.ExpiredAt);
        Assert.True((await grains.GetGrain<ControlPlane.Tokens.IAgentTokenGrain>(id).GetAsync())!.IsExpired(start));
        Clock.Now = start;
    }

    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}""";

    /// <summary>Waits for the silo's background record of the expiry to land in the token's grain.</summary>
    private async Task<DateTimeOffset?> RecordedExpiryAsync(string tokenId)
    {
        var grain = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<ControlPlane.Tokens.IAgentTokenGrain>(tokenId);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if ((await grain.GetAsync())?.ExpiredAt is { } at) return at;
            await Task.Delay(50);
        }

        return null;
    }

    [Fact]
    public async Task A_confirmation_token_is_good_one_tick_before_its_expiry_and_expired_exactly_at_it()
    {
        await using var client = await Host.ConnectAsync(fixture.LabToken);

        var (early, earlyToken) = await ApprovedAsync(client, "tick before");
        Clock.Now = early + TimeSpan.FromMinutes(5) - Tick;
        RefusalAssert.Succeeded(await client.CallToolAsync("lab__echo_action", Echo("tick before", earlyToken)));

        // Approved, then the token's five minutes run out before the agent redeems it.
        var (late, lateToken) = await ApprovedAsync(client, "exactly at");
        Clock.Now = late + TimeSpan.FromMinutes(5);
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", Echo("exactly at", lateToken)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("expired", refusal.GetProperty("reason").GetString());

        // Expiry is recorded: stepping the clock back does not revive the token.
        Clock.Now = late;
        var still = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", Echo("exactly at", lateToken)), RefusalCodes.RequiresConfirmation);
        Assert.Contains("expired", still.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_pending_approval_can_be_approved_one_tick_before_it_expires_but_not_at_it()
    {
        await using var client = await Host.ConnectAsync(fixture.LabToken);
        using var admin = Host.OperatorHttp();

        var opened = Clock.Now;
        var before = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", Echo("pending tick before")), RefusalCodes.RequiresConfirmation);
        var at = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", Echo("pending exactly at")), RefusalCodes.RequiresConfirmation);
        var expiresAt = at.GetProperty("expires_at").GetDateTimeOffset();
        Assert.Equal(opened + TimeSpan.FromMinutes(30), expiresAt);

        Clock.Now = expiresAt - Tick;
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/api/v1/approvals/{before.GetProperty("approval_id").GetString()}/approve", null)).StatusCode);

        Clock.Now = expiresAt;
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/v1/approvals/{at.GetProperty("approval_id").GetString()}/approve", null)).StatusCode);

        // Back in time, the expired request stays expired.
        Clock.Now = opened;
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/v1/approvals/{at.GetProperty("approval_id").GetString()}/approve", null)).StatusCode);
    }

    private async Task<(DateTimeOffset ApprovedAt, string Token)> ApprovedAsync(ModelContextProtocol.Client.McpClient client, string text)
    {
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", Echo(text)), RefusalCodes.RequiresConfirmation);
        var approvedAt = Clock.Now;
        using var admin = Host.OperatorHttp();
        var response = await admin.PostAsync($"/api/v1/approvals/{refusal.GetProperty("approval_id").GetString()}/approve", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(approvedAt + TimeSpan.FromMinutes(5), body.GetProperty("expiresAt").GetDateTimeOffset());
        return (approvedAt, body.GetProperty("confirmationToken").GetString()!);
    }

    private static Dictionary<string, object?> Echo(string text, string? token = null)
    {
        var args = new Dictionary<string, object?> { ["text"] = text };
        if (token is not null) args["confirmation_token"] = token;
        return args;
    }
}
