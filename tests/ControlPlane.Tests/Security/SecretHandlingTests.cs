using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Security;

/// <summary>
/// A full flow (mint, call, refused for confirmation, approve, redeem, a forged confirmation, a wrong secret,
/// revoke) on a host that logs everything down to Debug, then every secret of the flow looked for in the
/// logs, the audit trail, the API's answers and /metrics.
/// </summary>
[Collection(SecurityHostCollection.Name)]
public sealed class SecretHandlingTests(SecurityHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    [Fact]
    public async Task No_token_key_or_secret_appears_in_logs_audit_answers_or_metrics()
    {
        const string tenant = "sx-a";
        await Host.EnsureTenantAsync(tenant);
        await Host.SetModeAsync(tenant, LabTools.ServerId, "read-write");
        var (agentToken, tokenId) = await Host.MintAsync(tenant, "sx-agent", scopes: ["server:lab:read", "server:lab:write"]);
        var answers = new StringBuilder();

        string confirmationToken;
        string forged;
        await using (var client = await Host.ConnectAsync(agentToken))
        {
            var args = new Dictionary<string, object?> { ["text"] = "refund order 7" };
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", args), RefusalCodes.RequiresConfirmation);
            var approvalId = refusal.GetProperty("approval_id").GetString()!;

            using var admin = Host.OperatorHttp();
            var approve = await admin.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
            var approveText = await approve.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, approve.StatusCode);
            confirmationToken = JsonDocument.Parse(approveText).RootElement.GetProperty("confirmationToken").GetString()!;

            // A forged token for the same approval: its secret is as secret as a real one and must not be echoed either.
            forged = $"cpc_{approvalId}_{new string('Q', 21)}{new string('z', 22)}";
            var forgedResult = await client.CallToolAsync("lab__echo_action", new Dictionary<string, object?>(args) { ["confirmation_token"] = forged });
            answers.AppendLine(RefusalAssert.Text(forgedResult));
            RefusalAssert.Refused(forgedResult, RefusalCodes.RequiresConfirmation);

            var redeemed = await client.CallToolAsync("lab__echo_action", new Dictionary<string, object?>(args) { ["confirmation_token"] = confirmationToken });
            RefusalAssert.Succeeded(redeemed);
            answers.AppendLine(RefusalAssert.Text(redeemed));

            var replay = await client.CallToolAsync("lab__echo_action", new Dictionary<string, object?>(args) { ["confirmation_token"] = confirmationToken });
            answers.AppendLine(RefusalAssert.Text(replay));

            // Revoked mid-session: the refusal must not quote the token.
            var revoke = await admin.DeleteAsync($"/api/v1/tenants/{tenant}/tokens/{tokenId}");
            answers.AppendLine(await revoke.Content.ReadAsStringAsync());
            var afterRevoke = await client.CallToolAsync("lab__echo_action", args);
            answers.AppendLine(RefusalAssert.Text(afterRevoke));
            RefusalAssert.Refused(afterRevoke, RefusalCodes.Unauthenticated);
        }

        // A right id with a wrong secret, on both surfaces, and the problem details it gets.
        var wrongSecret = agentToken[..^43] + new string('B', 43);
        using (var wrong = Host.Http(wrongSecret))
        {
            var mcp = await wrong.PostAsync("/mcp", new StringContent("{}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Unauthorized, mcp.StatusCode);
            answers.AppendLine(mcp.Headers.WwwAuthenticate.ToString()).AppendLine(await mcp.Content.ReadAsStringAsync());
            var api = await wrong.GetAsync("/api/v1/tenants");
            answers.AppendLine(await api.Content.ReadAsStringAsync());
        }

        using var http = Host.OperatorHttp();
        var audit = await http.GetStringAsync($"/api/v1/audit/export?format=jsonl&tenantId={tenant}&includeIntents=true");
        Assert.Contains("tools/call:intent", audit);
        Assert.Contains("approval/approved", audit);
        var metrics = await Host.Http().GetStringAsync("/metrics");
        Assert.Contains("controlplane_calls_total", metrics);
        var logs = string.Join("\n", fixture.Logs.Lines);
        Assert.True(fixture.Logs.Lines.Count > 50, $"Only {fixture.Logs.Lines.Count} log lines were captured: is the capture wired?");

        var hashKey = (await File.ReadAllTextAsync(Path.Combine(Host.DataDir, "audit-hash.key"))).Trim();
        var secrets = new Dictionary<string, string>
        {
            ["agent token"] = agentToken,
            ["agent token secret"] = agentToken[^43..],
            ["wrong agent secret"] = wrongSecret[^43..],
            ["demo agent token secret"] = Host.Credentials.AgentToken[^43..],
            ["operator key secret"] = Host.Credentials.OperatorKey[^43..],
            ["confirmation token secret"] = confirmationToken[^43..],
            ["forged confirmation secret"] = forged[^43..],
            ["audit hash key"] = hashKey,
        };

        foreach (var (where, text) in new[] { ("logs", logs), ("audit", audit), ("API answers", answers.ToString()), ("/metrics", metrics) })
        {
            foreach (var (what, secret) in secrets)
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"The {what} appears in the {where}.");
            }
        }
    }

    [Theory]
    [InlineData("/api/v1/tenants", true)]
    [InlineData("/api/v1/tenants", false)]
    [InlineData("/mcp", false)]
    public async Task Machine_facing_answers_are_never_cached_sniffed_or_framed(string path, bool authenticated)
    {
        using var http = authenticated ? Host.OperatorHttp() : Host.Http();
        var response = await http.GetAsync(path);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.True(response.Headers.CacheControl?.NoStore, $"{path} answered without Cache-Control: no-store.");
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single());
    }

    [Fact]
    public async Task An_agent_of_one_tenant_never_sees_or_touches_another_tenants_tools_approvals_or_audit()
    {
        const string a = "iso-a", b = "iso-b";
        await Host.EnsureTenantAsync(a);
        await Host.EnsureTenantAsync(b);
        await Host.SetModeAsync(b, LabTools.ServerId, "read-write");
        var (tokenA, _) = await Host.MintAsync(a, "iso-agent", scopes: ["server:lab:read", "server:lab:write"]);
        var (tokenB, _) = await Host.MintAsync(b, "iso-agent", scopes: ["server:lab:read", "server:lab:write"]);
        var args = new Dictionary<string, object?> { ["text"] = "tenant b only" };

        await using var clientA = await Host.ConnectAsync(tokenA);
        await using var clientB = await Host.ConnectAsync(tokenB);

        // B's read-write mode is B's alone: A neither lists nor runs the action.
        Assert.Contains(await clientB.ListToolsAsync(), t => t.Name == "lab__echo_action");
        Assert.DoesNotContain(await clientA.ListToolsAsync(), t => t.Name == "lab__echo_action");
        RefusalAssert.Refused(await clientA.CallToolAsync("lab__echo_action", args), RefusalCodes.ReadOnly);

        // B's approved confirmation token, presented by A (same agent name, same arguments) after A's tenant is read-write too.
        var refusal = RefusalAssert.Refused(await clientB.CallToolAsync("lab__echo_action", args), RefusalCodes.RequiresConfirmation);
        var approvalB = refusal.GetProperty("approval_id").GetString()!;
        using var admin = Host.OperatorHttp();
        var approved = await (await admin.PostAsync($"/api/v1/approvals/{approvalB}/approve", null)).Content.ReadFromJsonAsync<JsonElement>();
        var tokenOfB = approved.GetProperty("confirmationToken").GetString()!;
        await Host.SetModeAsync(a, LabTools.ServerId, "read-write");
        var stolen = RefusalAssert.Refused(await clientA.CallToolAsync("lab__echo_action", new Dictionary<string, object?>(args) { ["confirmation_token"] = tokenOfB }), RefusalCodes.RequiresConfirmation);
        Assert.Contains("another tenant", stolen.GetProperty("reason").GetString());
        await Host.SetModeAsync(a, LabTools.ServerId, "read-only");

        // B's session cannot be driven with A's token.
        using (var hijack = Host.Http(tokenA))
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/mcp")
            {
                Content = new StringContent("""{"jsonrpc":"2.0","id":9,"method":"tools/list"}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Mcp-Session-Id", clientB.SessionId);
            request.Headers.Accept.ParseAdd("application/json");
            request.Headers.Accept.ParseAdd("text/event-stream");
            var response = await hijack.SendAsync(request);
            Assert.True((int)response.StatusCode is >= 400 and < 500, $"A's token drove B's session: {(int)response.StatusCode}");
        }

        // Agent tokens do not open the operator API at all, so approvals and audit are out of an agent's reach.
        using (var agentHttp = Host.Http(tokenA))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await agentHttp.GetAsync($"/api/v1/approvals?tenantId={b}")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await agentHttp.GetAsync($"/api/v1/audit?tenantId={b}")).StatusCode);
        }

        // Each tenant's audit holds only its own agent's calls; the pending approval of A is in A's queue, not B's.
        var auditA = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?tenantId={a}&limit=1000");
        var auditB = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/audit?tenantId={b}&limit=1000");
        Assert.All(auditA.GetProperty("items").EnumerateArray(), i => Assert.Equal(a, i.GetProperty("tenantId").GetString()));
        Assert.All(auditB.GetProperty("items").EnumerateArray(), i => Assert.Equal(b, i.GetProperty("tenantId").GetString()));
        Assert.Contains(auditA.GetProperty("items").EnumerateArray(), i => i.GetProperty("code").GetString() == RefusalCodes.ReadOnly);
        var queueB = await admin.GetFromJsonAsync<JsonElement>($"/api/v1/approvals?tenantId={b}");
        Assert.All(queueB.GetProperty("items").EnumerateArray(), i => Assert.Equal(b, i.GetProperty("tenantId").GetString()));
    }
}
