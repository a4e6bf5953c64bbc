using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Model;
using ControlPlane.Tests.EndToEnd;
using Microsoft.Data.Sqlite;
using ModelContextProtocol.Client;
using Npgsql;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Production;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ChaosCollection : ICollectionFixture<PostgresClusterFixture>
{
    // Its own three silos and database: the chaos leaves nothing behind that another test could trip over.
    public const string Name = "chaos on the production cluster";
}

/// <summary>
/// The reliability campaign's chaos run: steady reads and confirmed refunds from many sessions over three silos in
/// the production profile, kill switches and revocations flipped throughout, while one silo is SIGKILLed and
/// restarted, another is SIGKILLed, and then PostgreSQL is taken away for a few seconds. Afterwards everything the
/// clients were told is reconciled against the audit trail, the guard state and the support desk's refunds.
/// </summary>
[Collection(ChaosCollection.Name)]
public sealed class ChaosTests(PostgresClusterFixture cluster, ITestOutputHelper output)
{
    private const string Tenant = "chaos";
    private const int Readers = 6;
    private const int Actors = 3;
    private const long FirstAmount = 10_000;
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(6);
    private static readonly string[] ReadWrite = ["server:support-desk:read", "server:support-desk:write"];

    /// <summary>Refusals that mean "could not decide, so did not run".</summary>
    private static readonly HashSet<string> UndecidedCodes = ["AUDIT_UNAVAILABLE", "GUARD_UNAVAILABLE", "UPSTREAM_UNAVAILABLE"];

    [Fact]
    public async Task Kills_restarts_and_a_PostgreSQL_outage_lose_no_audit_record_kill_switch_or_revocation_and_run_nothing_undecided()
    {
        await cluster.EnsureAllRunningAsync();
        var silos = cluster.Silos;
        await cluster.EnsureTenantAsync(silos[0], Tenant);
        await cluster.SendAsync(silos[0], HttpMethod.Put, $"/api/v1/tenants/{Tenant}/servers/support-desk/mode", new { mode = "read-write", reason = "chaos refunds" });

        var readers = new List<string>();
        for (var i = 0; i < Readers; i++) readers.Add(await cluster.MintAsync(silos[i % silos.Count], Tenant, $"reader-{i}"));
        var actors = new List<string>();
        for (var i = 0; i < Actors; i++) actors.Add(await cluster.MintAsync(silos[i % silos.Count], Tenant, $"actor-{i}", ReadWrite));
        var heldAgent = await cluster.MintAsync(silos[0], Tenant, "holder", ReadWrite);

        // Targets for the flips: one agent to kill and one token to revoke per phase, each with a token of its own.
        var flips = new GuardFlips(cluster, output);
        for (var phase = 0; phase < GuardFlips.Phases; phase++) await flips.PrepareAsync(phase);

        await using var reads = new ClusterLoad(silos, Tenant, readers);
        await using var actions = new ActionLoad(cluster, actors, FirstAmount);
        reads.Start();
        actions.Start();
        await Phase("steady load", async () =>
        {
            await reads.WaitForProgressAsync(3, TimeSpan.FromSeconds(90));
            await actions.WaitForSuccessesAsync(3, TimeSpan.FromSeconds(90));
            await flips.FlipAsync(0, silos[0]);
        });

        await Phase("SIGKILL silo 1", async () =>
        {
            silos[1].Kill();
            await reads.WaitForProgressAsync(3, TimeSpan.FromSeconds(120));
            await actions.WaitForSuccessesAsync(2, TimeSpan.FromSeconds(120));
            await flips.FlipAsync(1, silos[2]);
        });

        await Phase("restart silo 1", async () =>
        {
            await silos[1].StartAsync(PostgresClusterFixture.StartTimeout);
            await flips.FlipAsync(2, silos[1]);
            await reads.WaitForProgressAsync(2, TimeSpan.FromSeconds(120));
        });

        await Phase("SIGKILL silo 2", async () =>
        {
            silos[2].Kill();
            await reads.WaitForProgressAsync(3, TimeSpan.FromSeconds(120));
            await actions.WaitForSuccessesAsync(2, TimeSpan.FromSeconds(120));
            await flips.FlipAsync(3, silos[0]);
        });

        // Approvals granted before the outage and redeemed during it: the guard cannot record the redemption or the
        // intent, so none of them may run. Redeemed again afterwards, each may run once.
        await using var holder = await PostgresClusterFixture.ConnectAsync(silos[0], heldAgent);
        var held = new List<(long Amount, string ApprovalId, string Token)>();
        for (var i = 0; i < 4; i++)
        {
            if (await actions.PrepareApprovedAsync(holder, 0) is { } approved) held.Add(approved);
        }

        Assert.True(held.Count > 0, "No approval could be prepared before the outage.");
        var heldDuring = new List<ActionAttempt>();
        DateTimeOffset outageStart = default, outageEnd = default;
        await Phase("PostgreSQL unavailable", async () =>
        {
            await using var outage = await DatabaseOutage.BeginAsync(cluster.ConnectionString);
            outageStart = DateTimeOffset.UtcNow;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            foreach (var (amount, approvalId, token) in held) heldDuring.Add(await actions.RedeemAsync(holder, 0, amount, approvalId, token, ActionStage.Redeem));
            await flips.FlipAsync(4, silos[1], expectFailure: true);
            var rest = Outage - clock.Elapsed;
            if (rest > TimeSpan.Zero) await Task.Delay(rest);
            await outage.EndAsync();
            outageEnd = DateTimeOffset.UtcNow;
        });

        // Nothing redeemed during the outage ran: no refund row for any of those amounts (checked before any retry).
        var refundsRightAfter = ReadRefunds();
        foreach (var attempt in heldDuring)
        {
            Assert.True(attempt.Outcome != "success", $"A confirmed refund of {attempt.Amount} ran while PostgreSQL was unavailable.");
            Assert.False(refundsRightAfter.ContainsKey(attempt.Amount), $"Refund {attempt.Amount} was refused ({attempt.Outcome}) during the outage but exists in the support desk.");
        }

        await Phase("recovery", async () =>
        {
            await reads.WaitForProgressAsync(3, TimeSpan.FromSeconds(120));
            await actions.WaitForSuccessesAsync(2, TimeSpan.FromSeconds(120));
            await flips.FlipAsync(5, silos[0]);
            foreach (var (amount, approvalId, token) in held)
            {
                await actions.RedeemAsync(holder, 0, amount, approvalId, token, ActionStage.Redeem);
                await actions.RedeemAsync(holder, 0, amount, approvalId, token, ActionStage.Replay);
            }
        });

        await reads.StopAsync();
        await actions.StopAsync();
        var restart = silos[2].StartAsync(PostgresClusterFixture.StartTimeout);

        // ---- Reconciliation ----
        var attempts = actions.Attempts.ToList();
        var successes = attempts.Where(a => a.Outcome == "success").ToList();

        // A result record the store refused during the outage is owed and written once it is back: give it time.
        var records = await ReadAuditAsync();
        for (var wait = 0; wait < 30 && successes.Any(s => !records.Any(r => r.Entry.Kind == "tools/call" && r.Entry.Outcome == "success" && r.Entry.ConfirmationId == s.ApprovalId)); wait++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2));
            records = await ReadAuditAsync();
        }

        var refunds = ReadRefunds();

        // 1. Every read a client saw complete has its audit record.
        var readMarkers = records.Where(r => r.Entry.Kind == "tools/call" && r.Entry.Tool == "list_orders" && r.Entry.Outcome != "refused")
            .Select(r => ArgumentOf(r.Entry, "customer_id")).ToHashSet(StringComparer.Ordinal);
        var unauditedReads = reads.Completed.Where(m => !readMarkers.Contains(m)).ToList();

        // 2. Every refund a client saw complete has its intent and its result in the audit, under its approval, and its row.
        var resultsByApproval = records.Where(r => r.Entry.Kind == "tools/call" && r.Entry.Tool == "create_refund" && r.Entry.Outcome == "success")
            .GroupBy(r => r.Entry.ConfirmationId ?? "").ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var intentAmounts = records.Where(r => r.Entry.Kind == "tools/call:intent" && r.Entry.Tool == "create_refund")
            .Select(r => long.Parse(ArgumentOf(r.Entry, "amount_cents"), System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var unauditedActions = successes.Where(s => s.ApprovalId is null || !resultsByApproval.ContainsKey(s.ApprovalId) || !intentAmounts.Contains(s.Amount)).ToList();
        var missingRows = successes.Where(s => !refunds.TryGetValue(s.Amount, out var rows) || !rows.Contains(s.RefundId!)).ToList();

        // 3. No confirmation token ran twice: at most one success per approval (clients and audit), one row per amount.
        var doubleSuccess = attempts.Where(a => a.Outcome == "success").GroupBy(a => a.ApprovalId).Where(g => g.Count() > 1).ToList();
        var doubleAudited = resultsByApproval.Where(p => p.Value > 1).ToList();
        var doubleRows = refunds.Where(p => p.Value.Count > 1).ToList();
        var replays = attempts.Where(a => a.Stage == ActionStage.Replay).ToList();

        // 4. Nothing ran unless the client saw it run (or lost the answer), and nothing ran without a durable intent.
        var byAmount = attempts.ToLookup(a => a.Amount);
        var unexplainedRows = refunds.Keys.Where(a => a >= FirstAmount)
            .Where(a => !byAmount[a].Any(x => x.Outcome is "success" or "failed")).ToList();
        var rowsWithoutIntent = refunds.Keys.Where(a => a >= FirstAmount && !intentAmounts.Contains(a)).ToList();
        var undecidedThatRan = attempts.Where(a => a.Outcome is { } o && UndecidedCodes.Contains(o))
            .Where(a => refunds.ContainsKey(a.Amount) && !byAmount[a.Amount].Any(x => x.Outcome is "success" or "failed")).ToList();

        await restart;

        // 5. Every kill switch and revocation the API acknowledged is in force on every silo, old or restarted.
        var guardProblems = await flips.VerifyAsync(silos);

        // ---- Figures ----
        var refusedReads = reads.Refused.Select(r => CodeIn(r)).GroupBy(c => c).Select(g => $"{g.Key} {g.Count()}");
        var actionCodes = attempts.GroupBy(a => (a.Stage, a.Outcome)).OrderBy(g => g.Key.Stage).ThenBy(g => g.Key.Outcome, StringComparer.Ordinal)
            .Select(g => $"{g.Key.Stage}:{g.Key.Outcome} {g.Count()}");
        var duringOutage = attempts.Where(a => a.Started < outageEnd && a.Ended > outageStart).GroupBy(a => a.Outcome).Select(g => $"{g.Key} {g.Count()}");
        output.WriteLine($"reads: made {reads.Started}, completed {reads.Completed.Count}, refused {reads.Refused.Count} ({string.Join(", ", refusedReads)}), " +
            $"failed over (call lost, session reopened) {reads.Failed.Count}, error results {reads.Errors.Count}");
        output.WriteLine($"actions: calls {attempts.Count}, confirmed refunds {successes.Count}, replays {replays.Count} (succeeded {replays.Count(r => r.Outcome == "success")}), " +
            $"sessions reopened {actions.Reconnects}, approvals the API could not grant {actions.ApprovalsFailed}");
        output.WriteLine("action outcomes: " + string.Join(", ", actionCodes));
        output.WriteLine($"during the {Outage.TotalSeconds:F0} s outage ({outageStart:HH:mm:ss.fff}-{outageEnd:HH:mm:ss.fff}): {string.Join(", ", duringOutage)}; held tokens redeemed: {string.Join(", ", heldDuring.Select(h => h.Outcome))}");
        output.WriteLine($"reconciled: {reads.Completed.Count} reads and {successes.Count} refunds against {records.Count} audit records " +
            $"and {refunds.Sum(r => r.Value.Count)} refund rows in {silos.Count} support-desk databases; {flips.Acknowledged} kill switches and revocations acknowledged, {flips.Refused} refused during the outage");
        output.WriteLine($"missing: reads {unauditedReads.Count}, actions {unauditedActions.Count}, refund rows {missingRows.Count}; double use: {doubleSuccess.Count}/{doubleAudited.Count}/{doubleRows.Count}; " +
            $"unexplained rows {unexplainedRows.Count}, rows without intent {rowsWithoutIntent.Count}, undecided that ran {undecidedThatRan.Count}; guard state problems {guardProblems.Count}");
        foreach (var problem in guardProblems) output.WriteLine("  " + problem);
        foreach (var error in reads.Errors.Take(3)) output.WriteLine("  read error result: " + error);
        foreach (var group in records.Where(r => r.Entry.Outcome == "error").GroupBy(r => (r.Entry.Tool, r.Entry.ErrorType, r.Entry.Code, r.Entry.Silo)))
        {
            output.WriteLine($"  audited errors: {group.Key.Tool} {group.Key.ErrorType} {group.Key.Code} on {group.Key.Silo}: {group.Count()}, {group.Min(r => r.Entry.Timestamp):HH:mm:ss}-{group.Max(r => r.Entry.Timestamp):HH:mm:ss}");
        }

        if (!reads.Errors.IsEmpty)
        {
            foreach (var silo in silos)
            {
                var lines = silo.RecentOutput().Split('\n').Where(l => l.Contains("xception", StringComparison.Ordinal) || l.Contains("fail", StringComparison.OrdinalIgnoreCase)).Take(12);
                output.WriteLine($"--- silo {silo.Index} ---\n" + string.Join('\n', lines));
            }
        }

        Assert.Empty(unauditedReads);
        Assert.Empty(unauditedActions);
        Assert.Empty(missingRows);
        Assert.Empty(doubleSuccess);
        Assert.Empty(doubleAudited);
        Assert.Empty(doubleRows);
        Assert.DoesNotContain(replays, r => r.Outcome == "success");
        Assert.Empty(unexplainedRows);
        Assert.Empty(rowsWithoutIntent);
        Assert.Empty(undecidedThatRan);
        Assert.Empty(guardProblems);
        Assert.True(reads.Completed.Count > 50 && successes.Count >= 9, $"The load was too light to mean anything: {reads.Completed.Count} reads, {successes.Count} refunds.");
        Assert.All(heldDuring, h => Assert.Contains(h.Outcome, UndecidedCodes));

        await using var store = cluster.OpenAuditStore();
        var verification = await store.VerifyAsync(Tenant, CancellationToken.None);
        Assert.True(verification.Ok, $"Audit chain of {Tenant} broken: {verification.Problem} at {verification.FirstBroken}");
    }

    private async Task Phase(string name, Func<Task> step)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await step();
        }
        catch (Exception ex) when (ex is TimeoutException or Xunit.Sdk.XunitException)
        {
            output.WriteLine($"phase '{name}' failed after {clock.Elapsed.TotalSeconds:F1} s");
            output.WriteLine(cluster.DescribeSilos());
            throw;
        }

        output.WriteLine($"phase '{name}': {clock.Elapsed.TotalSeconds:F1} s");
    }

    private async Task<List<AuditRecord>> ReadAuditAsync()
    {
        await using var store = cluster.OpenAuditStore();
        var records = new List<AuditRecord>();
        await foreach (var record in store.ExportAsync(new AuditQuery { TenantIds = [Tenant], IncludeIntents = true }, CancellationToken.None)) records.Add(record);
        return records;
    }

    private static string ArgumentOf(AuditEntry entry, string name) =>
        entry.Arguments is { } json && JsonDocument.Parse(json).RootElement.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText()
            : "";

    private static string CodeIn(string refused)
    {
        var json = refused[(refused.IndexOf(": ", StringComparison.Ordinal) + 2)..];
        try
        {
            return JsonDocument.Parse(json).RootElement.GetProperty("code").GetString() ?? "?";
        }
        catch (JsonException)
        {
            return "?";
        }
    }

    /// <summary>Refund rows of every silo's support-desk database, by amount (each approval refunds its own amount).</summary>
    private Dictionary<long, List<string>> ReadRefunds()
    {
        var refunds = new Dictionary<long, List<string>>();
        foreach (var silo in cluster.Silos)
        {
            var path = Path.Combine(silo.DataDir, "support-desk.db");
            if (!File.Exists(path)) continue;
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT amount_cents, id FROM refunds WHERE customer_id = $customer";
            command.Parameters.AddWithValue("$customer", ActionLoad.Customer);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var amount = reader.GetInt64(0);
                if (!refunds.TryGetValue(amount, out var rows)) refunds[amount] = rows = [];
                rows.Add(reader.GetString(1));
            }
        }

        return refunds;
    }

    /// <summary>Kill switches and token revocations made during the run, and the proof that each is still in force.</summary>
    private sealed class GuardFlips(PostgresClusterFixture cluster, ITestOutputHelper output)
    {
        public const int Phases = 6;
        private readonly Dictionary<int, (string KilledAgentToken, string RevokedTokenId, string RevokedToken)> _targets = [];
        private readonly List<(int Phase, string SwitchId)> _switches = [];
        private readonly List<(int Phase, string TokenId, string Token)> _revocations = [];

        public int Acknowledged => _switches.Count + _revocations.Count;

        public int Refused { get; private set; }

        public async Task PrepareAsync(int phase)
        {
            var silo = cluster.Silos[phase % cluster.Silos.Count];
            var killed = await cluster.MintAsync(silo, Tenant, $"killed-{phase}");
            using var http = cluster.Operator(silo);
            var response = await http.PostAsync($"/api/v1/tenants/{Tenant}/tokens",
                new StringContent(JsonSerializer.Serialize(new { agentId = $"revoked-{phase}", scopes = new[] { "server:support-desk:read" } }), Encoding.UTF8, "application/json"));
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(response.IsSuccessStatusCode, body.ToString());
            _targets[phase] = (killed, body.GetProperty("id").GetString()!, body.GetProperty("token").GetString()!);
        }

        /// <summary>Sets one agent kill switch and revokes one token; during the outage either may be refused, never half-done.</summary>
        public async Task FlipAsync(int phase, ProductionSilo silo, bool expectFailure = false)
        {
            var (_, tokenId, token) = _targets[phase];
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var http = cluster.Operator(silo);
            http.Timeout = TimeSpan.FromSeconds(30);
            var kill = await TryAsync(() => http.PostAsync("/api/v1/kill-switches",
                new StringContent(JsonSerializer.Serialize(new { scope = "agent", tenantId = Tenant, agentId = $"killed-{phase}", reason = $"chaos phase {phase}" }), Encoding.UTF8, "application/json")));
            if (kill is { IsSuccessStatusCode: true })
            {
                _switches.Add((phase, JsonDocument.Parse(await kill.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!));
            }
            else
            {
                Refused++;
                output.WriteLine($"phase {phase}: kill switch refused by silo {silo.Index}: {(kill is null ? "no answer" : $"{(int)kill.StatusCode}")}");
                Assert.True(expectFailure, $"Setting a kill switch on silo {silo.Index} failed outside the outage.");
            }

            var revoke = await TryAsync(() => http.DeleteAsync($"/api/v1/tenants/{Tenant}/tokens/{tokenId}"));
            if (revoke is { IsSuccessStatusCode: true })
            {
                _revocations.Add((phase, tokenId, token));
            }
            else
            {
                Refused++;
                output.WriteLine($"phase {phase}: revocation refused by silo {silo.Index}: {(revoke is null ? "no answer" : $"{(int)revoke.StatusCode}")}");
                Assert.True(expectFailure, $"Revoking a token on silo {silo.Index} failed outside the outage.");
            }

            output.WriteLine($"phase {phase}: kill switch and revocation on silo {silo.Index} answered in {clock.Elapsed.TotalSeconds:F1} s");
        }

        public async Task<List<string>> VerifyAsync(IReadOnlyList<ProductionSilo> silos)
        {
            var problems = new List<string>();
            foreach (var silo in silos)
            {
                var active = await cluster.ActiveSwitchIdsAsync(silo);
                problems.AddRange(_switches.Where(s => !active.Contains(s.SwitchId)).Select(s => $"silo {silo.Index}: kill switch of phase {s.Phase} not listed"));

                var tokens = (await cluster.GetAsync(silo, $"/api/v1/tenants/{Tenant}/tokens")).GetProperty("items").EnumerateArray()
                    .ToDictionary(t => t.GetProperty("id").GetString()!, t => t.GetProperty("status").GetString());
                problems.AddRange(_revocations.Where(r => tokens.GetValueOrDefault(r.TokenId) != "revoked").Select(r => $"silo {silo.Index}: token of phase {r.Phase} is {tokens.GetValueOrDefault(r.TokenId)}"));

                foreach (var (phase, _) in _switches)
                {
                    await using var client = await PostgresClusterFixture.ConnectAsync(silo, _targets[phase].KilledAgentToken);
                    var result = await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = ActionLoad.Customer });
                    if (ActionLoad.CodeOf(result) != "KILLED") problems.Add($"silo {silo.Index}: agent killed in phase {phase} got {RefusalAssert.Text(result)}");
                }

                foreach (var (phase, _, token) in _revocations)
                {
                    var status = await InitializeAsync(silo, token);
                    if (status != HttpStatusCode.Unauthorized) problems.Add($"silo {silo.Index}: token revoked in phase {phase} opened a session ({(int)status})");
                }
            }

            return problems;
        }

        /// <summary>An MCP initialize over plain HTTP, to see the status a revoked token gets.</summary>
        private static async Task<HttpStatusCode> InitializeAsync(ProductionSilo silo, string token)
        {
            using var http = new HttpClient { BaseAddress = silo.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp")
            {
                Content = new StringContent(
                    """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"chaos","version":"1"}}}""",
                    Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.Accept.ParseAdd("application/json");
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        private static async Task<HttpResponseMessage?> TryAsync(Func<Task<HttpResponseMessage>> send)
        {
            try
            {
                return await send();
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                return null;
            }
        }
    }
}
