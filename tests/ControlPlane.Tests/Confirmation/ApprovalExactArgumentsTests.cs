using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Approvals;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Confirmation;

/// <summary>
/// An approver must judge the real action: two actions whose arguments name different people look the same once
/// redacted, so an approver of the tenant sees the exact arguments (each reveal audited), while a viewer, the agent's
/// proposed_action and the audit see them redacted, and nobody sees them once the approval is closed.
/// </summary>
public sealed class ApprovalExactArgumentsTests : IAsyncLifetime
{
    private ControlPlaneTestHost _host = null!;

    private const string Tool = "lab__echo_action";
    private string _agentToken = null!;

    public async Task InitializeAsync()
    {
        _host = await ControlPlaneTestHost.StartAsync();
        await _host.EnsureTenantAsync("exact");
        await _host.SetModeAsync("exact", LabTools.ServerId, "read-write");
        (_agentToken, _) = await _host.MintAsync("exact", "exact-agent", scopes: ["server:lab:read", "server:lab:write"]);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static Dictionary<string, object?> Refund(string who) => new() { ["text"] = $"refund the duplicate charge to {who}" };

    [Fact]
    public async Task Approvers_see_the_exact_arguments_audited_and_everyone_else_sees_them_redacted_until_the_approval_closes()
    {
        await using var client = await _host.ConnectAsync(_agentToken);
        var ada = RefusalAssert.Refused(await client.CallToolAsync(Tool, Refund("ada@example.com")), RefusalCodes.RequiresConfirmation);
        var bob = RefusalAssert.Refused(await client.CallToolAsync(Tool, Refund("bob@example.org")), RefusalCodes.RequiresConfirmation);
        var adaId = ada.GetProperty("approval_id").GetString()!;
        var bobId = bob.GetProperty("approval_id").GetString()!;
        Assert.NotEqual(adaId, bobId);

        // What the agent is told stays redacted: the two proposals look the same.
        var adaProposed = ada.GetProperty("proposed_action").GetProperty("arguments").GetProperty("text").GetString();
        Assert.DoesNotContain("ada@example.com", adaProposed);
        Assert.Equal(adaProposed, bob.GetProperty("proposed_action").GetProperty("arguments").GetProperty("text").GetString());

        // The approver (the admin) sees who each refund is for, and is told these are the exact arguments.
        using var admin = _host.OperatorHttp();
        var pending = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/approvals?status=pending")).GetProperty("items").EnumerateArray().ToList();
        var adaItem = pending.Single(i => i.GetProperty("id").GetString() == adaId);
        Assert.True(adaItem.GetProperty("argumentsExact").GetBoolean());
        Assert.Equal("refund the duplicate charge to ada@example.com", adaItem.GetProperty("arguments").GetProperty("text").GetString());
        Assert.Contains("bob@example.org", pending.Single(i => i.GetProperty("id").GetString() == bobId).GetProperty("arguments").GetRawText());

        // A viewer, and an approver limited to another tenant (who cannot see the approval at all), do not.
        using var viewer = await OperatorAsync("exact-viewer", [OperatorRoles.Viewer], []);
        var viewed = (await viewer.GetFromJsonAsync<JsonElement>("/api/v1/approvals?status=pending")).GetProperty("items").EnumerateArray()
            .Single(i => i.GetProperty("id").GetString() == adaId);
        Assert.False(viewed.GetProperty("argumentsExact").GetBoolean());
        Assert.DoesNotContain("ada@example.com", viewed.GetRawText());
        using var elsewhere = await OperatorAsync("exact-elsewhere", [OperatorRoles.Viewer, OperatorRoles.Approver], ["demo"]);
        Assert.DoesNotContain(adaId, await elsewhere.GetStringAsync("/api/v1/approvals?status=pending"));

        // Every reveal is in the audit with who made it; the call's own record stays redacted.
        var audit = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=exact&limit=200")).GetProperty("items").EnumerateArray().ToList();
        var reveals = audit.Where(r => r.GetProperty("kind").GetString() == "operator/approval.reveal" && r.GetProperty("detail").GetString()!.Contains(adaId)).ToList();
        Assert.NotEmpty(reveals);
        Assert.All(reveals, r => Assert.Contains("admin", r.GetRawText()));
        Assert.DoesNotContain(audit, r => r.GetRawText().Contains("ada@example.com", StringComparison.Ordinal));

        // Once decided and used, or denied, the exact arguments are gone: even the approver sees the redacted form.
        var token = (await (await admin.PostAsync($"/api/v1/approvals/{adaId}/approve", null)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("confirmationToken").GetString()!;
        RefusalAssert.Succeeded(await client.CallToolAsync(Tool, new Dictionary<string, object?>(Refund("ada@example.com")) { ["confirmation_token"] = token }));
        Assert.True((await admin.PostAsJsonAsync($"/api/v1/approvals/{bobId}/deny", new { reason = "not this one" })).IsSuccessStatusCode);
        var grains = _host.Services.GetRequiredService<IGrainFactory>();
        foreach (var (id, status) in new[] { (adaId, ApprovalStatus.Consumed), (bobId, ApprovalStatus.Denied) })
        {
            var closed = await grains.GetGrain<IApprovalGrain>(id).GetAsync();
            Assert.Equal(status, closed!.Status);
            Assert.Null(closed.Request.SealedArguments);
            Assert.DoesNotContain("@example.", closed.Request.Arguments);
        }
    }

    private async Task<HttpClient> OperatorAsync(string id, string[] roles, string[] tenants)
    {
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        var directory = _host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount(id, roles, tenants, hash, DateTimeOffset.UtcNow));
        return _host.Http(key);
    }
}
