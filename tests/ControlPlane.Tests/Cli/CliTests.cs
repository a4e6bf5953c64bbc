using System.Text.Json;
using ControlPlane.Cli;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Tests.Cli;

public sealed class CliHostFixture : IAsyncLifetime
{
    public ControlPlaneTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneTestHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>cpctl run in-process against a real host over HTTP: what an operator's script sees (output and exit codes).</summary>
public sealed class CliTests(CliHostFixture fixture) : IClassFixture<CliHostFixture>
{
    private ControlPlaneTestHost Host => fixture.Host;

    [Fact]
    public async Task Kill_stops_an_agents_call_and_clear_lets_it_through_again()
    {
        await Host.EnsureTenantAsync("cli-kill");
        var (token, _) = await Host.MintAsync("cli-kill", "cli-bot", scopes: ["server:support-desk:read"]);
        await using var client = await Host.ConnectAsync(token);
        var lookup = new Dictionary<string, object?> { ["email"] = "ada@example.com" };
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));

        var set = await RunAsync("kill", "set", "--scope", "agent", "--tenant", "cli-kill", "--agent", "cli-bot", "--reason", "cli test", "--json");
        Assert.Equal(ExitCodes.Ok, set.Code);
        var switchId = set.Json.GetProperty("id").GetString()!;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", lookup), RefusalCodes.Killed);

        var list = await RunAsync("kill", "list");
        Assert.Equal(ExitCodes.Ok, list.Code);
        Assert.Contains(switchId, list.Out);
        Assert.Contains("agent", list.Out);

        Assert.Equal(ExitCodes.Ok, (await RunAsync("kill", "clear", switchId, "--reason", "cli test over")).Code);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));

        var again = await RunAsync("kill", "clear", switchId, "--reason", "twice");
        Assert.Equal(ExitCodes.NotFound, again.Code);
    }

    [Fact]
    public async Task Tokens_mint_list_and_revoke()
    {
        await Host.EnsureTenantAsync("cli-tokens");
        var minted = await RunAsync("tokens", "mint", "--tenant", "cli-tokens", "--agent", "cli-agent", "--scope", "server:support-desk:read", "--json");
        Assert.Equal(ExitCodes.Ok, minted.Code);
        var token = minted.Json.GetProperty("token").GetString()!;
        var id = minted.Json.GetProperty("id").GetString()!;

        await using (var client = await Host.ConnectAsync(token))
        {
            RefusalAssert.Succeeded(await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }));

            var revoked = await RunAsync("tokens", "revoke", "--tenant", "cli-tokens", id);
            Assert.Equal(ExitCodes.Ok, revoked.Code);
            Assert.Contains("revoked " + id, revoked.Out);
            RefusalAssert.Refused(await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" }), RefusalCodes.Unauthenticated);
        }

        var list = await RunAsync("tokens", "list", "--tenant", "cli-tokens", "--json");
        var listed = list.Json.GetProperty("items").EnumerateArray().Single(t => t.GetProperty("id").GetString() == id);
        Assert.Equal("revoked", listed.GetProperty("status").GetString());
        Assert.DoesNotContain(token, list.Out);

        Assert.Equal(ExitCodes.Usage, (await RunAsync("tokens", "mint", "--tenant", "cli-tokens", "--agent", "x", "--scope", "not-a-scope")).Code);
        Assert.Equal(ExitCodes.NotFound, (await RunAsync("tokens", "list", "--tenant", "no-such-tenant")).Code);
    }

    [Fact]
    public async Task Audit_verify_exits_zero_when_intact_and_four_when_tampered_with()
    {
        await Host.EnsureTenantAsync("cli-audit");
        var (token, _) = await Host.MintAsync("cli-audit", "auditee", scopes: ["server:support-desk:read"]);
        await using (var client = await Host.ConnectAsync(token))
        {
            for (var i = 0; i < 3; i++) await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        }

        var intact = await RunAsync("audit", "verify", "--tenant", "cli-audit", "--json");
        Assert.Equal(ExitCodes.Ok, intact.Code);
        Assert.True(intact.Json.GetProperty("ok").GetBoolean());
        Assert.True(intact.Json.GetProperty("checked").GetInt64() >= 3);

        var tail = await RunAsync("audit", "tail", "--tenant", "cli-audit", "-n", "5", "--json");
        Assert.Equal(ExitCodes.Ok, tail.Code);
        Assert.All(tail.Json.GetProperty("items").EnumerateArray(), i => Assert.Equal("cli-audit", i.GetProperty("tenantId").GetString()));

        var export = await RunAsync("audit", "export", "--tenant", "cli-audit", "--format", "jsonl");
        Assert.Equal(ExitCodes.Ok, export.Code);
        var lines = export.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 3);
        Assert.All(lines, l => Assert.Equal("cli-audit", JsonDocument.Parse(l).RootElement.GetProperty("tenantId").GetString()));

        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(Host.DataDir, "audit.db")};Pooling=false"))
        {
            await connection.OpenAsync();
            var command = connection.CreateCommand();
            command.CommandText = "UPDATE audit_records SET outcome = 'error' WHERE tenant_id = 'cli-audit' AND seq = 2";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        var broken = await RunAsync("audit", "verify", "--tenant", "cli-audit");
        Assert.Equal(ExitCodes.Refused, broken.Code);
        Assert.Contains("BROKEN", broken.Out);
    }

    [Fact]
    public async Task Approvals_list_and_approve_give_the_agent_its_confirmation_token()
    {
        await Host.EnsureTenantAsync("cli-approvals");
        var (token, _) = await Host.MintAsync("cli-approvals", "refunder", scopes: ["server:support-desk:read", "server:support-desk:write"]);
        await Host.SetModeAsync("cli-approvals", "support-desk", "read-write");
        await using var client = await Host.ConnectAsync(token);
        var refund = new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 500, ["reason"] = "duplicate" };
        var first = await client.CallToolAsync("create_refund", refund);
        RefusalAssert.Refused(first, RefusalCodes.RequiresConfirmation);
        var approvalId = ControlPlane.Guard.Pipeline.Refusal.Read(first)!.Value.GetProperty("approval_id").GetString()!;

        var pending = await RunAsync("approvals", "list", "--tenant", "cli-approvals", "--json");
        Assert.Contains(pending.Json.GetProperty("items").EnumerateArray(), a => a.GetProperty("id").GetString() == approvalId);

        var approved = await RunAsync("approvals", "approve", approvalId, "--reason", "cli: confirmed by phone", "--json");
        Assert.Equal(ExitCodes.Ok, approved.Code);
        var confirmation = approved.Json.GetProperty("confirmationToken").GetString();
        RefusalAssert.Succeeded(await client.CallToolAsync("create_refund", new Dictionary<string, object?>(refund) { ["confirmation_token"] = confirmation }));

        // The reason is in the approval's audit record; the kind filter finds it, and the operator's mode change beside it.
        var decided = await RunAsync("audit", "tail", "--tenant", "cli-approvals", "--kind", "approval/approved", "--json");
        Assert.Contains(decided.Json.GetProperty("items").EnumerateArray(), i => i.GetProperty("detail").GetString()!.Contains("cli: confirmed by phone", StringComparison.Ordinal));
        var operatorEvents = await RunAsync("audit", "tail", "--tenant", "cli-approvals", "--kind", "operator/*", "-n", "100", "--json");
        Assert.All(operatorEvents.Json.GetProperty("items").EnumerateArray(), i => Assert.StartsWith("operator/", i.GetProperty("kind").GetString()));
        Assert.Contains(operatorEvents.Json.GetProperty("items").EnumerateArray(), i => i.GetProperty("kind").GetString() == "operator/mode.set");

        Assert.Equal(ExitCodes.Refused, (await RunAsync("approvals", "deny", approvalId, "--reason", "too late")).Code);
    }

    [Fact]
    public async Task Drills_run_and_list()
    {
        var run = await RunAsync("drills", "run", "user", "--json");
        Assert.Equal(ExitCodes.Ok, run.Code);
        Assert.True(run.Json.GetProperty("passed").GetBoolean());

        var text = await RunAsync("drills", "run", "tool");
        Assert.Equal(ExitCodes.Ok, text.Code);
        Assert.Contains("tool drill PASSED", text.Out);

        var list = await RunAsync("drills", "list");
        Assert.Equal(ExitCodes.Ok, list.Code);
        Assert.Contains(list.Out.Split('\n'), l => l.StartsWith("user", StringComparison.Ordinal) && l.Contains("ok") && l.Contains("last passed"));
        Assert.Contains(list.Out.Split('\n'), l => l.StartsWith("global", StringComparison.Ordinal) && l.Contains("STALE") && l.Contains("by hand"));

        Assert.Equal(ExitCodes.Usage, (await RunAsync("drills", "run", "global")).Code);
        Assert.Equal(ExitCodes.Usage, (await RunAsync("drills", "run", "planet")).Code);
    }

    [Fact]
    public async Task Bad_or_missing_keys_exit_two_unreachable_hosts_five_bad_usage_one_and_the_key_is_never_printed()
    {
        var bad = await RunWithAsync(["kill", "list", "--url", Host.BaseUrl.ToString(), "--key", "cpo_nope_wrong"], key: null);
        Assert.Equal(ExitCodes.Auth, bad.Code);
        Assert.DoesNotContain("cpo_nope_wrong", bad.Out + bad.Error);

        Assert.Equal(ExitCodes.Auth, (await RunWithAsync(["kill", "list", "--url", Host.BaseUrl.ToString()], key: null)).Code);

        var unreachable = await RunWithAsync(["kill", "list", "--url", $"http://127.0.0.1:{FreePorts.Next()}"], key: Host.Credentials.OperatorKey);
        Assert.Equal(ExitCodes.Unavailable, unreachable.Code);
        Assert.DoesNotContain(Host.Credentials.OperatorKey, unreachable.Out + unreachable.Error);

        Assert.Equal(ExitCodes.Usage, (await RunAsync("kill", "set", "--scope", "galaxy", "--reason", "x")).Code);
        Assert.Equal(ExitCodes.Usage, (await RunAsync("kill", "set", "--scope", "tenant", "--reason", "missing the tenant id")).Code);
        Assert.Equal(ExitCodes.Usage, (await RunAsync("frobnicate")).Code);
    }

    private Task<CliRun> RunAsync(params string[] args) => RunWithAsync(args, Host.Credentials.OperatorKey);

    /// <summary>Runs cpctl with the URL and key from the environment, as an operator's shell would set them.</summary>
    private async Task<CliRun> RunWithAsync(string[] args, string? key)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var environment = new Dictionary<string, string?> { [CliApp.UrlVariable] = Host.BaseUrl.ToString(), [CliApp.KeyVariable] = key };
        var code = await CliApp.RunAsync(args, new CliContext { Out = output, Error = error, Environment = name => environment.GetValueOrDefault(name) });
        var run = new CliRun(code, output.ToString(), error.ToString());
        Assert.DoesNotContain(Host.Credentials.OperatorKey, run.Error);
        return run;
    }

    private sealed record CliRun(int Code, string Out, string Error)
    {
        public JsonElement Json => JsonDocument.Parse(Out).RootElement;
    }
}
