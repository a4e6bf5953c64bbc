using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Upstreams;

/// <summary>One host for the read-guard tests: an upstream that serves resources and prompts with personal data.</summary>
public sealed class UpstreamReadHostFixture : IAsyncLifetime
{
    public const string ServerId = "lab-reads";

    public ControlPlaneTestHost Host { get; private set; } = null!;

    public string CallLog { get; } = Path.Combine(Path.GetTempPath(), "cp-reads-calls-" + Guid.NewGuid().ToString("N")[..8]);

    public string CancelLog { get; } = Path.Combine(Path.GetTempPath(), "cp-reads-cancels-" + Guid.NewGuid().ToString("N")[..8]);

    public async Task InitializeAsync()
    {
        Host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Upstreams:RegistryPollInterval"] = "00:00:01",
        });
        await Host.RegisterNodeAsync(ServerId, UpstreamPackages.Lab, env: new() { ["LAB_READS"] = "1", ["LAB_CALL_LOG"] = CallLog, ["LAB_CANCEL_LOG"] = CancelLog });
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        File.Delete(CallLog);
        File.Delete(CancelLog);
    }
}

/// <summary>
/// resources/read and prompts/get of an upstream pass the same guard as tools/call: kill switches (also in flight),
/// rate limits, redaction of what comes back, and the audit. A refusal is a JSON-RPC error whose message starts with
/// the code and whose data is the refusal object.
/// </summary>
public sealed class UpstreamReadGuardTests(UpstreamReadHostFixture fixture) : IClassFixture<UpstreamReadHostFixture>
{
    private const string Ada = "lab://customer/ada";
    private ControlPlaneTestHost Host => fixture.Host;

    [UpstreamFact]
    public async Task Resource_and_prompt_results_are_redacted_and_audited_with_their_kind()
    {
        var (token, _) = await Host.MintAsync("demo", "read-redacted", scopes: ["server:lab-reads:read"]);
        await using var client = await Host.ConnectAsync(token, "/mcp/" + UpstreamReadHostFixture.ServerId);

        var text = Assert.IsType<TextResourceContents>(Assert.Single((await client.ReadResourceAsync(Ada)).Contents)).Text;
        Assert.DoesNotContain("ada@example.com", text, StringComparison.Ordinal);
        Assert.Contains("[REDACTED:email]", text, StringComparison.Ordinal);
        Assert.StartsWith("Ada Lovelace", text, StringComparison.Ordinal);

        var prompt = await client.GetPromptAsync("contact");
        Assert.DoesNotContain("ada@example.com", prompt.Description, StringComparison.Ordinal);
        var message = Assert.IsType<TextContentBlock>(Assert.Single(prompt.Messages).Content).Text;
        Assert.DoesNotContain("ada@example.com", message, StringComparison.Ordinal);
        Assert.Contains("[REDACTED:email]", message, StringComparison.Ordinal);

        var records = await AuditAsync("read-redacted");
        var read = Assert.Single(records, r => r.GetProperty("tool").GetString() == Ada);
        Assert.Equal("allowed", read.GetProperty("decision").GetString());
        Assert.Equal("success", read.GetProperty("outcome").GetString());
        Assert.Equal(UpstreamReadHostFixture.ServerId, read.GetProperty("server").GetString());
        // The hash is of what the agent received: the redacted text.
        Assert.Equal(64, read.GetProperty("resultHash").GetString()!.Length);
        Assert.Single(records, r => r.GetProperty("tool").GetString() == "contact" && r.GetProperty("outcome").GetString() == "success");
    }

    [UpstreamFact]
    public async Task Reads_and_prompts_spend_the_agents_rate_limit_and_are_refused_with_retry_after()
    {
        const string agent = "read-limited";
        using (var admin = Host.OperatorHttp())
        {
            var set = await admin.PutAsJsonAsync("/api/v1/tenants/demo/rate-limits", new { scope = "agent", agentId = agent, capacity = 2, refillPerSecond = 0.01 });
            Assert.True(set.IsSuccessStatusCode, await set.Content.ReadAsStringAsync());
        }

        var (token, _) = await Host.MintAsync("demo", agent, scopes: ["server:lab-reads:read"]);
        await using var client = await Host.ConnectAsync(token, "/mcp/" + UpstreamReadHostFixture.ServerId);
        await client.ReadResourceAsync(Ada);
        await client.GetPromptAsync("contact");

        var read = await Assert.ThrowsAsync<McpProtocolException>(() => client.ReadResourceAsync(Ada).AsTask());
        AssertRefusal(read, RefusalCodes.RateLimited);
        Assert.True(Convert.ToDouble(read.Data["retry_after"]) >= 1, "A rate-limited read says when to retry.");
        Assert.Equal("agent", read.Data["scope"]);
        AssertRefusal(await Assert.ThrowsAsync<McpProtocolException>(() => client.GetPromptAsync("contact").AsTask()), RefusalCodes.RateLimited);

        var refused = (await AuditAsync(agent)).Where(r => r.GetProperty("decision").GetString() == "refused").ToList();
        Assert.Equal(2, refused.Count);
        Assert.All(refused, r => Assert.Equal(RefusalCodes.RateLimited, r.GetProperty("code").GetString()));
    }

    [UpstreamFact]
    public async Task A_kill_switch_refuses_reads_and_prompts_and_cancels_a_read_in_flight()
    {
        const string agent = "read-killed";
        var (token, _) = await Host.MintAsync("demo", agent, scopes: ["server:lab-reads:read"]);
        await using var client = await Host.ConnectAsync(token, "/mcp/" + UpstreamReadHostFixture.ServerId);

        // A read that the upstream never answers, in flight when the switch lands.
        var waiting = client.ReadResourceAsync("lab://wait").AsTask();
        await Eventually.TrueAsync(() => waiting.IsCompleted || (File.Exists(fixture.CallLog) && File.ReadAllText(fixture.CallLog).Contains("lab://wait", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the upstream to receive the waiting read");
        Assert.False(waiting.IsCompleted);

        var switchId = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = agent, reason = "reads under review" });
        try
        {
            var killed = await Assert.ThrowsAsync<McpProtocolException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30)));
            AssertRefusal(killed, RefusalCodes.Killed);
            Assert.Equal("reads under review", killed.Data["reason"]);
            // The upstream was told to stop: the cancellation reached it.
            await Eventually.TrueAsync(() => File.Exists(fixture.CancelLog) && File.ReadAllText(fixture.CancelLog).Trim().Length > 0,
                TimeSpan.FromSeconds(30), "the upstream to see the cancellation");

            AssertRefusal(await Assert.ThrowsAsync<McpProtocolException>(() => client.ReadResourceAsync(Ada).AsTask()), RefusalCodes.Killed);
            AssertRefusal(await Assert.ThrowsAsync<McpProtocolException>(() => client.GetPromptAsync("contact").AsTask()), RefusalCodes.Killed);
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }

        await client.ReadResourceAsync(Ada);
        var records = await AuditAsync(agent);
        Assert.Contains(records, r => r.GetProperty("tool").GetString() == "lab://wait" && r.GetProperty("code").GetString() == RefusalCodes.Killed
            && r.GetProperty("outcome").GetString() == "error");
        Assert.Equal(2, records.Count(r => r.GetProperty("decision").GetString() == "refused" && r.GetProperty("code").GetString() == RefusalCodes.Killed));
    }

    [UpstreamFact]
    public async Task Completions_are_proxied_through_the_guard_redacted_audited_and_killable()
    {
        const string agent = "completer";
        var (token, _) = await Host.MintAsync("demo", agent, scopes: ["server:lab-reads:read"]);
        await using var client = await Host.ConnectAsync(token);
        var prompt = new PromptReference { Name = UpstreamReadHostFixture.ServerId + "__contact" };

        var completed = await client.CompleteAsync(prompt, "email", "a");
        var value = Assert.Single(completed.Completion.Values);
        Assert.DoesNotContain("ada@example.com", value, StringComparison.Ordinal);
        Assert.Contains("[REDACTED:email]", value, StringComparison.Ordinal);

        var switchId = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = agent, reason = "completions paused" });
        try
        {
            AssertRefusal(await Assert.ThrowsAsync<McpProtocolException>(() => client.CompleteAsync(prompt, "email", "g").AsTask()), RefusalCodes.Killed);
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }

        var records = (await AuditAsync(agent)).Where(r => r.GetProperty("kind").GetString() == "completion/complete").ToList();
        Assert.Equal(2, records.Count);
        Assert.Contains(records, r => r.GetProperty("outcome").GetString() == "success" && r.GetProperty("tool").GetString() == "contact");
        Assert.Contains(records, r => r.GetProperty("code").GetString() == RefusalCodes.Killed);
    }

    [UpstreamFact]
    public async Task A_read_of_an_unknown_server_is_audited_as_an_invalid_request()
    {
        const string agent = "read-prober";
        var (token, _) = await Host.MintAsync("demo", agent, scopes: ["server:lab-reads:read"]);
        await using var client = await Host.ConnectAsync(token);

        await Assert.ThrowsAsync<McpProtocolException>(() => client.GetPromptAsync("no-such-server__contact").AsTask());

        var record = Assert.Single(await AuditAsync(agent));
        Assert.Equal("refused", record.GetProperty("decision").GetString());
        Assert.Equal("INVALID_REQUEST", record.GetProperty("code").GetString());
        Assert.Equal("no-such-server", record.GetProperty("server").GetString());
    }

    [UpstreamFact]
    public async Task The_official_TypeScript_client_reads_a_redacted_resource_and_a_refusal_with_its_data()
    {
        const string agent = "read-ts";
        var (token, _) = await Host.MintAsync("demo", agent, scopes: ["server:lab-reads:read"]);
        await using var client = await Clients.TypeScriptMcpClient.ConnectAsync(new Uri(Host.BaseUrl, "/mcp/" + UpstreamReadHostFixture.ServerId), token);

        var read = await client.ReadResourceAsync(Ada);
        Assert.True(read.GetProperty("ok").GetBoolean(), read.ToString());
        var text = read.GetProperty("result").GetProperty("contents")[0].GetProperty("text").GetString()!;
        Assert.Contains("[REDACTED:email]", text, StringComparison.Ordinal);
        Assert.DoesNotContain("ada@example.com", text, StringComparison.Ordinal);

        var switchId = await Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = agent, reason = "ts reads paused" });
        try
        {
            foreach (var refused in new[] { await client.ReadResourceAsync(Ada), await client.GetPromptAsync("contact") })
            {
                Assert.False(refused.GetProperty("ok").GetBoolean(), refused.ToString());
                var error = refused.GetProperty("error");
                Assert.Equal((int)McpErrorCode.InvalidRequest, error.GetProperty("code").GetInt32());
                Assert.Contains("KILLED:", error.GetProperty("message").GetString(), StringComparison.Ordinal);
                var data = error.GetProperty("data");
                Assert.Equal(RefusalCodes.Killed, data.GetProperty("code").GetString());
                Assert.Equal("agent", data.GetProperty("scope").GetString());
                Assert.Equal("ts reads paused", data.GetProperty("reason").GetString());
            }
        }
        finally
        {
            await Host.ClearAsync(switchId);
        }
    }

    private static void AssertRefusal(McpProtocolException error, string code)
    {
        Assert.Contains(code + ":", error.Message, StringComparison.Ordinal);
        Assert.Equal(code, error.Data["code"]);
        Assert.False(string.IsNullOrWhiteSpace(error.Data["message"] as string));
    }

    private async Task<List<JsonElement>> AuditAsync(string agentId)
    {
        using var admin = Host.OperatorHttp();
        var page = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?tenantId=demo&agentId={agentId}&limit=100");
        // The agent's own requests; minting its token is an operator record under the same agent id.
        return [.. page.GetProperty("items").EnumerateArray().Where(r => !r.GetProperty("kind").GetString()!.StartsWith("operator/", StringComparison.Ordinal))];
    }
}
