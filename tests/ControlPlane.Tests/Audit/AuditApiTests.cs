using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Audit;

/// <summary>Every call recorded server-side, redacted and keyed-hashed, queryable, exportable and verifiable.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class AuditApiTests(EmbeddedHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    private static async Task<JsonElement[]> Items(HttpClient http, string query)
    {
        var response = await http.GetAsync("/api/v1/audit?" + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("items").EnumerateArray()];
    }

    [Fact]
    public async Task Allowed_and_refused_calls_are_recorded_with_redacted_arguments_and_a_keyed_hash()
    {
        var (token, _) = await Host.MintAsync("demo", "audit-agent", "audit-user", ["server:support-desk:read"]);
        await using var client = await Host.ConnectAsync(token);
        var lookup = new Dictionary<string, object?> { ["email"] = "ada@example.com" };
        var received = await client.CallToolAsync("lookup_customer_by_email", lookup);
        RefusalAssert.Succeeded(received);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));
        RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 5, ["reason"] = "fraud" }), RefusalCodes.ForbiddenScope);

        using var admin = Host.OperatorHttp();
        var items = await Items(admin, "tenantId=demo&agentId=audit-agent&limit=50");
        var calls = items.Where(i => i.GetProperty("kind").GetString() == "tools/call").ToList();
        Assert.Equal(3, calls.Count);

        var lookups = calls.Where(i => i.GetProperty("tool").GetString() == "lookup_customer_by_email").ToList();
        Assert.Equal(2, lookups.Count);
        foreach (var item in lookups)
        {
            Assert.Equal("support-desk", item.GetProperty("server").GetString());
            Assert.Equal("allowed", item.GetProperty("decision").GetString());
            Assert.Equal("success", item.GetProperty("outcome").GetString());
            Assert.Equal("audit-user", item.GetProperty("userId").GetString());
            Assert.Equal(client.SessionId, item.GetProperty("sessionId").GetString());
            // The result hash is of exactly what the agent received, as the SDK serialises it.
            var bytes = JsonSerializer.SerializeToUtf8Bytes(received, ModelContextProtocol.McpJsonUtilities.DefaultOptions);
            Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), item.GetProperty("resultHash").GetString());
            Assert.Equal(bytes.Length, item.GetProperty("resultSize").GetInt64());
            Assert.True(item.GetProperty("resultSize").GetInt64() > 0);
            Assert.True(item.GetProperty("latencyMs").GetDouble() >= 0);
            Assert.DoesNotContain("ada@example.com", item.GetRawText());
            Assert.Contains("REDACTED", item.GetProperty("arguments").GetRawText());
        }

        // Equal calls match by keyed hash, without the arguments being readable.
        Assert.Equal(lookups[0].GetProperty("argumentsHash").GetString(), lookups[1].GetProperty("argumentsHash").GetString());

        var refused = Assert.Single(calls, i => i.GetProperty("decision").GetString() == "refused");
        Assert.Equal(RefusalCodes.ForbiddenScope, refused.GetProperty("code").GetString());
        Assert.Equal("refused", refused.GetProperty("outcome").GetString());
        Assert.Equal("create_refund", refused.GetProperty("tool").GetString());

        // Newest first.
        var times = items.Select(i => i.GetProperty("timestamp").GetDateTimeOffset()).ToList();
        Assert.Equal(times.OrderByDescending(t => t), times);

        Assert.Single(await Items(admin, "tenantId=demo&agentId=audit-agent&decision=refused"));
        Assert.Equal(2, (await Items(admin, "tenantId=demo&agentId=audit-agent&tool=lookup_customer_by_email&outcome=success")).Length);
        Assert.Empty(await Items(admin, $"tenantId=demo&agentId=audit-agent&from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(5).ToString("O"))}"));
    }

    [Fact]
    public async Task Paging_export_and_verification_agree()
    {
        var (token, _) = await Host.MintAsync("demo", "paging-agent", scopes: ["server:support-desk:read"]);
        await using (var client = await Host.ConnectAsync(token))
        {
            for (var i = 0; i < 12; i++) await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        }

        using var admin = Host.OperatorHttp();
        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var response = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&agentId=paging-agent&limit=5" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            seen.AddRange(response.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!));
            cursor = response.GetProperty("nextCursor").ValueKind == JsonValueKind.String ? response.GetProperty("nextCursor").GetString() : null;
        }
        while (cursor is not null);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        Assert.True(seen.Count >= 12);

        var jsonl = await admin.GetStringAsync("/api/v1/audit/export?format=jsonl&tenantId=demo&agentId=paging-agent");
        var exported = jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()!).ToList();
        Assert.Equal(seen, exported);

        var csv = await admin.GetStringAsync("/api/v1/audit/export?format=csv&tenantId=demo&agentId=paging-agent");
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("id,timestamp,tenantId", lines[0]);
        Assert.Equal(seen.Count + 1, lines.Length);

        var verify = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify?tenantId=demo");
        Assert.True(verify.GetProperty("ok").GetBoolean(), verify.GetRawText());
        Assert.True(verify.GetProperty("checked").GetInt64() >= seen.Count);

        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/audit/export?format=xml")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/audit?decision=maybe")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/v1/audit?cursor=garbage!!")).StatusCode);
    }

    [Fact]
    public async Task Only_auditors_read_the_audit_and_only_for_their_tenants()
    {
        await Host.EnsureTenantAsync("acme");
        var (acmeToken, _) = await Host.MintAsync("acme", "acme-audited", scopes: ["server:support-desk:read"]);
        await using (var client = await Host.ConnectAsync(acmeToken))
        {
            await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
        }

        var directory = Host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        var (_, viewerKey, viewerHash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "audit-viewer");
        await directory.UpsertAsync(new OperatorAccount("audit-viewer", [OperatorRoles.Viewer, OperatorRoles.Operator], [], viewerHash, DateTimeOffset.UtcNow));
        var (_, auditorKey, auditorHash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "acme-auditor");
        await directory.UpsertAsync(new OperatorAccount("acme-auditor", [OperatorRoles.Auditor], ["acme"], auditorHash, DateTimeOffset.UtcNow));

        using var viewer = Host.Http(viewerKey);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/audit")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/audit/export")).StatusCode);

        using var auditor = Host.Http(auditorKey);
        var own = await Items(auditor, "limit=200");
        Assert.NotEmpty(own);
        Assert.All(own, i => Assert.Equal("acme", i.GetProperty("tenantId").GetString()));
        Assert.Equal(HttpStatusCode.Forbidden, (await auditor.GetAsync("/api/v1/audit?tenantId=demo")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await auditor.GetAsync("/api/v1/audit/verify?tenantId=demo")).StatusCode);
        var exported = await auditor.GetStringAsync("/api/v1/audit/export?format=jsonl");
        Assert.DoesNotContain("\"tenantId\":\"demo\"", exported);
    }
}
