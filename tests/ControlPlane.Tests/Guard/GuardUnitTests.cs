using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.InFlight;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using ControlPlane.Tokens;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard;

public sealed class GuardStateFreshnessTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-25T12:00:00Z"));
    private readonly GuardStateCache _cache;

    public GuardStateFreshnessTests()
    {
        _cache = new GuardStateCache(_time, Options.Create(new GuardStateOptions { StaleAfter = TimeSpan.FromSeconds(5) }));
    }

    private GuardCall Call(ToolClassification classification) => GuardCalls.ForTool(_cache,
        new CallIdentity("t", "a", "u", "s", "srv", "tool"),
        Tokens.Valid("t", "a"),
        ScopeGrant.Parse(["server:srv:read", "server:srv:write"]),
        new ToolDescriptor("srv", new Tool { Name = "tool" }, classification, static (_, _) => ValueTask.FromResult(new CallToolResult()), "tool"),
        null);

    [Fact]
    public async Task Before_the_first_load_actions_are_refused_with_GUARD_UNAVAILABLE()
    {
        var refusal = await new KillSwitchStep(_cache).CheckAsync(Call(ToolClassification.Action), default);
        Assert.Equal(RefusalCodes.GuardUnavailable, refusal?.Code);
        Assert.NotNull(refusal!.RetryAfterSeconds);
    }

    [Fact]
    public async Task When_state_goes_unconfirmed_actions_fail_closed_and_reads_go_on()
    {
        var step = new KillSwitchStep(_cache);
        _cache.Apply(new GuardStateSnapshot(1, [], []));
        Assert.Null(await step.CheckAsync(Call(ToolClassification.Action), default));

        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.False(_cache.IsFresh);
        Assert.Equal(RefusalCodes.GuardUnavailable, (await step.CheckAsync(Call(ToolClassification.Action), default))?.Code);
        Assert.Null(await step.CheckAsync(Call(ToolClassification.Read), default));

        _cache.Confirm();
        Assert.Null(await step.CheckAsync(Call(ToolClassification.Action), default));
    }

    [Fact]
    public async Task A_stale_silo_still_enforces_the_kills_it_knows_on_reads()
    {
        var step = new KillSwitchStep(_cache);
        _cache.Apply(new GuardStateSnapshot(1, [new KillSwitch("ks1", new KillTarget(KillScope.Tenant, TenantId: "t"), "why", "op", _time.GetUtcNow())], []));
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(RefusalCodes.Killed, (await step.CheckAsync(Call(ToolClassification.Read), default))?.Code);
    }

    [Fact]
    public void Older_snapshots_never_replace_newer_ones()
    {
        _cache.Apply(new GuardStateSnapshot(5, [new KillSwitch("ks1", KillTarget.Global, "why", "op", _time.GetUtcNow())], []));
        Assert.Equal(5, _cache.Apply(new GuardStateSnapshot(4, [], [])));
        Assert.Single(_cache.ActiveSwitches);
    }

    [Fact]
    public void A_state_of_the_same_number_with_another_stamp_replaces_the_held_one_and_cancels_what_it_newly_covers()
    {
        // The silo holds version 3 as pushed by an owner whose write the store never kept...
        _cache.Apply(new GuardStateSnapshot(3, [], [], Stamp: "phantom"));
        var covered = new List<string>();
        _cache.SwitchesAdded += (_, added) => covered.AddRange(added.Select(s => s.Id));

        // ...and the owner's real version 3 differs: it must win, not be ignored as "not newer".
        Assert.Equal(3, _cache.Apply(new GuardStateSnapshot(3, [new KillSwitch("ks-real", new KillTarget(KillScope.Tenant, TenantId: "t"), "real", "op", _time.GetUtcNow())], [], Stamp: "stored")));
        Assert.Equal("stored", _cache.Id.Stamp);
        Assert.Equal(["ks-real"], covered);

        // The same state again changes nothing; an older one pushed late is ignored; the owner's confirmed older state replaces.
        Assert.Equal(3, _cache.Apply(new GuardStateSnapshot(3, [], [], Stamp: "stored")));
        Assert.Single(_cache.ActiveSwitches);
        Assert.Equal(3, _cache.Apply(new GuardStateSnapshot(2, [], [], Stamp: "late")));
        Assert.Equal(2, _cache.Replace(new GuardStateSnapshot(2, [], [], Stamp: "owner")));
        Assert.Empty(_cache.ActiveSwitches);
    }

    [Fact]
    public void In_flight_calls_covered_by_a_new_switch_are_cancelled_and_others_are_not()
    {
        _cache.Apply(new GuardStateSnapshot(1, [], []));
        using var calls = new InFlightCalls(_cache);
        using var covered = calls.Begin(new CallIdentity("t", "a", "u", "s1", "srv", "tool"), CancellationToken.None);
        using var other = calls.Begin(new CallIdentity("t2", "a", "u", "s2", "srv", "tool"), CancellationToken.None);
        Assert.Equal(2, calls.Count);

        _cache.Apply(new GuardStateSnapshot(2, [new KillSwitch("ks1", new KillTarget(KillScope.Tenant, TenantId: "t"), "stop", "op", _time.GetUtcNow())], []));

        Assert.True(covered.Token.IsCancellationRequested);
        Assert.Equal("ks1", covered.KilledBy?.Id);
        Assert.False(other.Token.IsCancellationRequested);
        Assert.Null(other.KilledBy);
    }
}

public sealed class TokenStatusTests
{
    [Fact]
    public void Expiry_and_revocation_are_judged_on_the_injected_clock_and_guard_state()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-25T12:00:00Z"));
        var cache = new GuardStateCache(time, Options.Create(new GuardStateOptions()));
        var validator = new AgentTokenValidator(null!, cache, new TokenIds(new ControlPlane.Audit.Redaction.ArgumentHasher(new byte[32]), time), time);
        var token = Tokens.Valid("t", "a") with { ExpiresAt = time.GetUtcNow().AddMinutes(10) };

        Assert.Equal(TokenStatus.Valid, validator.StatusOf(token));
        time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromTicks(1));
        Assert.Equal(TokenStatus.Valid, validator.StatusOf(token));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(TokenStatus.Expired, validator.StatusOf(token));

        var fresh = Tokens.Valid("t", "a") with { Id = "fresh", ExpiresAt = time.GetUtcNow().AddDays(1) };
        cache.Apply(new GuardStateSnapshot(1, [], [new RevokedToken("fresh", fresh.ExpiresAt)]));
        Assert.Equal(TokenStatus.Revoked, validator.StatusOf(fresh));
    }

    [Fact]
    public void Secret_tokens_round_trip_and_reject_anything_else()
    {
        for (var i = 0; i < 200; i++)
        {
            var (id, bearer, hash) = SecretTokens.Create(SecretTokens.AgentPrefix);
            Assert.True(SecretTokens.TryParse(bearer, SecretTokens.AgentPrefix, out var parsedId, out var secret), bearer);
            Assert.Equal(id, parsedId);
            Assert.True(SecretTokens.Matches(secret, hash));
            Assert.False(SecretTokens.TryParse(bearer, SecretTokens.OperatorPrefix, out _, out _));
            Assert.False(SecretTokens.TryParse(bearer[..^1], SecretTokens.AgentPrefix, out _, out _));
            Assert.False(SecretTokens.Matches(secret[..^1] + (secret[^1] == 'A' ? 'B' : 'A'), hash));
        }

        foreach (var bad in new[] { "", "cpt_", "cpt__x", "Bearer cpt_x", "cpt_" + new string('a', 300), "cpt_id_" + new string('!', 43) })
        {
            Assert.False(SecretTokens.TryParse(bad, SecretTokens.AgentPrefix, out _, out _), bad);
        }
    }
}

public sealed class RefusalShapeTests
{
    [Fact]
    public void A_refusal_is_an_error_result_whose_structured_content_and_text_carry_the_same_json()
    {
        var result = new Refusal(RefusalCodes.RateLimited, "slow down") { Scope = "agent", RetryAfterSeconds = 12 }.ToCallToolResult();

        Assert.True(result.IsError);
        var structured = result.StructuredContent!.Value;
        Assert.Equal("RATE_LIMITED", structured.GetProperty("code").GetString());
        Assert.Equal("slow down", structured.GetProperty("message").GetString());
        Assert.Equal("agent", structured.GetProperty("scope").GetString());
        Assert.Equal(12, structured.GetProperty("retry_after").GetInt32());
        Assert.False(structured.TryGetProperty("reason", out _));

        var text = Assert.IsType<TextContentBlock>(Assert.Single(result.Content)).Text;
        Assert.Equal(structured.GetRawText(), JsonDocument.Parse(text).RootElement.GetRawText());
    }

    [Fact]
    public void A_refusal_of_a_tool_with_an_output_schema_travels_as_text_only_and_reads_back()
    {
        var result = new Refusal(RefusalCodes.Killed, "stopped") { Scope = "tenant", Reason = "incident" }.ToCallToolResult(structured: false);

        Assert.True(result.IsError);
        Assert.Null(result.StructuredContent);
        var read = Refusal.Read(result);
        Assert.NotNull(read);
        Assert.Equal("KILLED", read.Value.GetProperty("code").GetString());
        Assert.Equal("incident", read.Value.GetProperty("reason").GetString());
        Assert.Null(Refusal.Read(new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = "the tool broke" }] }));
        Assert.Null(Refusal.Read(new CallToolResult { Content = [new TextContentBlock { Text = """{"code":"KILLED"}""" }] }));
    }

    [Fact]
    public void The_catalog_lists_every_contract_code_once()
    {
        Assert.Equal(10, RefusalCodes.All.Count);
        Assert.Equal(RefusalCodes.All.Count, RefusalCodes.All.Distinct().Count());
    }
}

public sealed class KillTargetTests
{
    [Theory]
    [InlineData(KillScope.Global, null, null, null, null, null, null, true)]
    [InlineData(KillScope.Global, "t", null, null, null, null, null, false)]
    [InlineData(KillScope.Server, null, null, null, null, "srv", null, true)]
    [InlineData(KillScope.Server, "t", null, null, null, "srv", null, true)]
    [InlineData(KillScope.Server, null, null, null, null, null, null, false)]
    [InlineData(KillScope.Tool, null, null, null, null, "srv", null, false)]
    [InlineData(KillScope.Tool, "t", null, null, null, "srv", "x", true)]
    [InlineData(KillScope.Tenant, null, null, null, null, null, null, false)]
    [InlineData(KillScope.Agent, "t", null, null, null, null, null, false)]
    [InlineData(KillScope.Agent, "t", "a", null, null, null, null, true)]
    [InlineData(KillScope.User, "t", null, "u", null, null, null, true)]
    [InlineData(KillScope.User, "t", "a", "u", null, null, null, false)]
    [InlineData(KillScope.Session, null, null, null, "s", null, null, true)]
    [InlineData(KillScope.Session, null, null, null, null, null, null, false)]
    [InlineData(KillScope.Session, null, null, null, "-Xy_9z", null, null, true)]
    [InlineData(KillScope.Session, null, null, null, "a|b", null, null, false)]
    [InlineData(KillScope.Tenant, "a|b", null, null, null, null, null, false)]
    public void Each_scope_needs_exactly_its_ids(KillScope scope, string? tenant, string? agent, string? user, string? session, string? server, string? tool, bool valid)
    {
        var target = new KillTarget(scope, tenant, agent, user, session, server, tool);
        Assert.Equal(valid, target.Validate().Count == 0);
    }

    [Fact]
    public void Keys_of_different_targets_never_collide()
    {
        var targets = new[]
        {
            KillTarget.Global,
            new KillTarget(KillScope.Server, ServerId: "x"),
            new KillTarget(KillScope.Server, TenantId: "x", ServerId: "x"),
            new KillTarget(KillScope.Tool, ServerId: "x", ToolName: "x"),
            new KillTarget(KillScope.Tool, TenantId: "x", ServerId: "x", ToolName: "x"),
            new KillTarget(KillScope.Tenant, TenantId: "x"),
            new KillTarget(KillScope.Agent, TenantId: "x", AgentId: "x"),
            new KillTarget(KillScope.User, TenantId: "x", UserId: "x"),
            new KillTarget(KillScope.Session, SessionId: "x"),
        };
        Assert.Equal(targets.Length, targets.Select(t => t.Key).Distinct().Count());
    }
}

internal static class Tokens
{
    public static AgentToken Valid(string tenant, string agent) =>
        new("tok1", tenant, agent, null, [], [1, 2, 3], DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue, null, "test");
}

public sealed class EcmaPatternTests
{
    [Theory]
    [InlineData("^a$", @"^a\z")]
    [InlineData(@"^a\$", @"^a\$")]
    [InlineData("^[$]+$", @"^[$]+\z")]
    [InlineData("^(a|b$)", @"^(a|b\z)")]
    [InlineData("no anchors", "no anchors")]
    public void Dollar_means_end_of_input_as_in_ECMA_262(string pattern, string expected) =>
        Assert.Equal(expected, ControlPlane.Guard.Schemas.EcmaPatterns.Translate(pattern));
}
