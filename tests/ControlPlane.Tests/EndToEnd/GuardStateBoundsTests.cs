using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.GuardState;
using ControlPlane.Operators;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// The guard state record (every kill switch, revocation and tool policy, loaded by the owner and pushed to every
/// silo) stays small whatever an operator sends: long text and floods of switches are refused with errors that say
/// what to fix, and the stored record, measured in the store, stays under its bound.
/// </summary>
public sealed class GuardStateBoundsTests(ITestOutputHelper output) : IAsyncLifetime
{
    private ControlPlaneTestHost _host = null!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
    }

    /// <summary>Starts a host whose record bound is <paramref name="maxRecordBytes"/>: small, so it is reached in a few hundred requests.</summary>
    private async Task StartAsync(int maxRecordBytes) => _host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
    {
        ["ControlPlane:GuardState:MaxRecordBytes"] = maxRecordBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    });

    [Fact]
    public async Task A_tenant_limited_operator_flooding_long_reasons_and_switches_is_refused_past_the_bounds_and_the_record_stays_small()
    {
        // Room for a full tenant: here the tenant's own bound is the one reached.
        const int MaxRecordBytes = 256 * 1024, HardLimitBytes = MaxRecordBytes + MaxRecordBytes / 4;
        await StartAsync(MaxRecordBytes);
        const string tenant = "bounds-a";
        await _host.EnsureTenantAsync(tenant);
        using var limited = await LimitedOperatorAsync("bounds-limited", tenant);
        var before = RecordBytes("guard-state");

        // Text past its bound: 400 naming the field, nothing set.
        var huge = new string('r', 100_000);
        await AssertInvalidAsync(await limited.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = tenant, agentId = "a-1", reason = huge }), "reason");
        await AssertInvalidAsync(await limited.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = tenant, agentId = new string('x', 10_000), reason = "too long an id" }), "agentId");
        Assert.Equal(0, await ActiveAsync(tenant));

        // A flood of switches, each with the longest reason allowed: the tenant's bound holds, then 409 with what to clear.
        var reason = new string('q', GuardStateLimits.MaxReasonLength);
        var set = 0;
        HttpResponseMessage? refused = null;
        for (var i = 0; i < GuardStateLimits.MaxKillSwitchesPerTenant + 20; i++)
        {
            var response = await limited.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = tenant, agentId = $"flood-{i}", reason });
            if (response.StatusCode == HttpStatusCode.Created)
            {
                set++;
                continue;
            }

            refused = response;
            break;
        }

        Assert.Equal(GuardStateLimits.MaxKillSwitchesPerTenant, set);
        Assert.NotNull(refused);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("Clear those no longer needed", detail);
        Assert.Contains(tenant, detail);

        // A clear with a flood of text is refused too, and the switch stays set.
        var first = await FirstActiveIdAsync(tenant);
        await AssertInvalidAsync(await limited.PostAsJsonAsync($"/api/v1/kill-switches/{first}/clear", new { reason = huge }), "reason");
        Assert.Equal(GuardStateLimits.MaxKillSwitchesPerTenant, await ActiveAsync(tenant));

        // Flip the same switch many times: the history is kept apart from the record, and only its last entries.
        for (var i = 0; i < 60; i++)
        {
            var id = await FirstActiveIdAsync(tenant);
            Assert.Equal(HttpStatusCode.OK, (await limited.PostAsJsonAsync($"/api/v1/kill-switches/{id}/clear", new { reason })).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await limited.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "agent", tenantId = tenant, agentId = $"again-{i}", reason })).StatusCode);
        }

        var owner = _host.Services.GetRequiredService<IGrainFactory>().GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        var history = await owner.GetHistoryAsync(1000);
        Assert.Equal(GuardStateLimits.HistoryKept, history.Length);
        Assert.Equal("set", history[0].Action);
        Assert.Equal($"again-59", history[0].Target.AgentId);

        var record = RecordBytes("guard-state");
        var historyBytes = RecordBytes("guard-history");
        var snapshot = await owner.GetSnapshotAsync();
        output.WriteLine($"guard-state record: {before} bytes empty, {record} bytes with {snapshot.KillSwitches.Length} switches of {GuardStateLimits.MaxReasonLength}-character reasons " +
            $"(~{(record - before) / Math.Max(1, snapshot.KillSwitches.Length)} bytes a switch) after {set + 120} flips; bound {MaxRecordBytes} (hard {HardLimitBytes})");
        output.WriteLine($"guard-history record: {historyBytes} bytes ({history.Length} flips kept)");
        Assert.True(record <= HardLimitBytes, $"The stored record is {record} bytes, past {HardLimitBytes}.");
    }

    [Fact]
    public async Task Policy_stops_at_the_record_bound_while_protective_switches_still_fit_in_the_reserve_and_nothing_goes_past_it()
    {
        const int MaxRecordBytes = 64 * 1024, HardLimitBytes = MaxRecordBytes + MaxRecordBytes / 4;
        await StartAsync(MaxRecordBytes);
        using var admin = _host.OperatorHttp();
        var added = 0;
        string? fullDetail = null;
        for (var t = 0; t < 20 && fullDetail is null; t++)
        {
            var tenant = $"bounds-b{t}";
            await _host.EnsureTenantAsync(tenant);
            for (var i = 0; i < GuardStateLimits.MaxRateLimitsPerTenant; i++)
            {
                var response = await admin.PutAsJsonAsync($"/api/v1/tenants/{tenant}/rate-limits",
                    new { scope = "agent", agentId = $"agent-with-a-fairly-long-id-{i:D4}", capacity = 10, refillPerSecond = 1 });
                if (response.IsSuccessStatusCode)
                {
                    added++;
                    continue;
                }

                Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
                fullDetail = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString();
                break;
            }
        }

        Assert.NotNull(fullDetail);
        Assert.Contains("guard state record", fullDetail);
        Assert.Contains("no longer needed", fullDetail);
        var atPolicyBound = RecordBytes("guard-state");
        Assert.True(atPolicyBound <= MaxRecordBytes, $"Policy took the record to {atPolicyBound} bytes, past {MaxRecordBytes}.");

        // Stopping agents still works past the policy bound, in the reserve; then that too is refused, and nothing more is written.
        var switches = 0;
        HttpResponseMessage? refused = null;
        for (var t = 0; refused is null && t < 20; t++)
        {
            var tenant = $"bounds-c{t}";
            await _host.EnsureTenantAsync(tenant);
            for (var i = 0; i < GuardStateLimits.MaxKillSwitchesPerTenant; i++)
            {
                var response = await admin.PostAsJsonAsync("/api/v1/kill-switches",
                    new { scope = "agent", tenantId = tenant, agentId = $"stop-{i}", reason = new string('s', GuardStateLimits.MaxReasonLength) });
                if (response.StatusCode == HttpStatusCode.Created)
                {
                    switches++;
                    continue;
                }

                refused = response;
                break;
            }
        }

        Assert.True(switches > 0, "No kill switch fitted in the protective reserve.");
        Assert.NotNull(refused);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        var final = RecordBytes("guard-state");
        output.WriteLine($"{added} rate limits filled the record to {atPolicyBound} bytes (policy bound {MaxRecordBytes}); " +
            $"then {switches} kill switches fitted in the reserve, to {final} bytes (hard bound {HardLimitBytes}); the next of each was refused with 409");
        Assert.True(final <= HardLimitBytes, $"The stored record is {final} bytes, past {HardLimitBytes}.");

        // Clearing always works, and frees room for policy again.
        using (var list = await admin.GetAsync("/api/v1/kill-switches"))
        {
            var items = (await list.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("items").EnumerateArray().ToList();
            foreach (var item in items) await _host.ClearAsync(item.GetProperty("id").GetString()!);
        }

        for (var i = 0; i < 3; i++)
        {
            var removed = await admin.PutAsJsonAsync("/api/v1/tenants/bounds-b0/rate-limits",
                new { scope = "agent", agentId = $"agent-with-a-fairly-long-id-{i:D4}", capacity = 0, refillPerSecond = 0 });
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        }

        await _host.EnsureTenantAsync("bounds-d");
        var again = await admin.PutAsJsonAsync("/api/v1/tenants/bounds-d/rate-limits", new { scope = "agent", agentId = "after-clearing", capacity = 1, refillPerSecond = 1 });
        Assert.True(again.StatusCode == HttpStatusCode.OK, $"{(int)again.StatusCode} {await again.Content.ReadAsStringAsync()}");
        output.WriteLine($"after clearing the switches and 3 rate limits: {RecordBytes("guard-state")} bytes, and a new rate limit fits again");
    }

    private async Task<HttpClient> LimitedOperatorAsync(string id, string tenant)
    {
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        var directory = _host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount(id, [OperatorRoles.Operator], [tenant], hash, DateTimeOffset.UtcNow));
        return _host.Http(key);
    }

    private static async Task AssertInvalidAsync(HttpResponseMessage response, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"Expected 400, got {(int)response.StatusCode}: {body[..Math.Min(300, body.Length)]}");
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out _), $"The problem does not name '{field}': {body[..Math.Min(300, body.Length)]}");
    }

    private async Task<int> ActiveAsync(string tenant) => (await ActiveOfAsync(tenant)).Count;

    private async Task<string> FirstActiveIdAsync(string tenant) => (await ActiveOfAsync(tenant))[0].GetProperty("id").GetString()!;

    private async Task<List<JsonElement>> ActiveOfAsync(string tenant)
    {
        using var admin = _host.OperatorHttp();
        var list = await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
        return [.. list.GetProperty("items").EnumerateArray().Where(i => i.GetProperty("tenantId").GetString() == tenant)];
    }

    /// <summary>The stored size of a grain state, as the embedded store holds it (0 when it was never written).</summary>
    private long RecordBytes(string stateName)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_host.DataDir, "grains.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(SUM(length(payload)), 0) FROM grain_state WHERE state_name = $name";
        command.Parameters.AddWithValue("$name", stateName);
        return (long)command.ExecuteScalar()!;
    }
}
