using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Authentication;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Security;

public sealed class ApprovalIdUnitTests
{
    [Fact]
    public void Made_ids_verify_and_a_changed_digit_or_another_clusters_key_does_not()
    {
        var ours = new ApprovalIds(new ArgumentHasher(Enumerable.Repeat((byte)7, 32).ToArray()));
        var theirs = new ApprovalIds(new ArgumentHasher(Enumerable.Repeat((byte)8, 32).ToArray()));
        for (var i = 0; i < 200; i++)
        {
            var id = ours.NewId();
            Assert.Matches("^apr-[0-9a-f]{36}$", id);
            Assert.True(ours.IsGenuine(id));
            Assert.False(theirs.IsGenuine(id));
            var at = 4 + (i % 36);
            var flipped = id[..at] + (id[at] == '0' ? '1' : '0') + id[(at + 1)..];
            Assert.False(ours.IsGenuine(flipped));
        }

        Assert.False(ours.IsGenuine("apr-0123456789abcdef0123"));
        Assert.False(ours.IsGenuine(ours.NewId().ToUpperInvariant()));
        Assert.False(ours.IsGenuine(""));
    }
}

/// <summary>Confirmation tokens naming made-up approval ids are refused without activating an approval grain per id.</summary>
[Collection(SecurityHostCollection.Name)]
public sealed class ApprovalIdActivationTests(SecurityHostFixture fixture)
{
    [Fact]
    public async Task Guessed_approval_ids_are_refused_in_memory_and_a_real_one_still_confirms()
    {
        var host = fixture.Host;
        const string Tenant = "apr-ids";
        await host.EnsureTenantAsync(Tenant);
        await host.SetModeAsync(Tenant, LabTools.ServerId, "read-write");
        var (token, _) = await host.MintAsync(Tenant, "apr-agent", scopes: ["server:lab:read", "server:lab:write"]);
        await using var client = await host.ConnectAsync(token);
        var arguments = new Dictionary<string, object?> { ["text"] = "guess" };

        // The first refusal opens the (one, deduplicated) approval request for these arguments.
        var opened = RefusalAssert.Refused(await client.CallToolAsync("lab__echo_action", arguments), RefusalCodes.RequiresConfirmation);
        var realId = opened.GetProperty("approval_id").GetString()!;
        Assert.Matches("^apr-[0-9a-f]{36}$", realId);

        var management = host.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        async Task<int> ApprovalGrains() => (await management.GetSimpleGrainStatistics())
            .Where(s => s.GrainType.Contains(".ApprovalGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
        var before = await ApprovalGrains();
        Assert.True(before >= 1, "The real approval's grain should be counted (is the count blind?).");

        var random = new Random(20261126);
        for (var i = 0; i < 200; i++)
        {
            // Well-formed ids with a made-up tag, and the real id's randomness with another tag.
            var guessed = i % 2 == 0 ? "apr-" + RandomHex(random, 36) : realId[..24] + RandomHex(random, 16);
            var refusal = RefusalAssert.Refused(
                await client.CallToolAsync("lab__echo_action", new Dictionary<string, object?> { ["text"] = "guess", ["confirmation_token"] = $"cpc_{guessed}_{new string('A', 43)}" }),
                RefusalCodes.RequiresConfirmation);
            Assert.Contains("not issued by this control plane", refusal.GetProperty("reason").GetString());
            Assert.Equal(realId, refusal.GetProperty("approval_id").GetString());
        }

        var added = await ApprovalGrains() - before;
        Assert.True(added == 0, $"{added} approval grains were activated for 200 made-up approval ids.");

        // The genuine path still works: approve, redeem once.
        using var admin = host.OperatorHttp();
        var approved = await admin.PostAsync($"/api/v1/approvals/{realId}/approve", null);
        var confirmation = (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<System.Text.Json.JsonElement>(approved.Content)).GetProperty("confirmationToken").GetString();
        RefusalAssert.Succeeded(await client.CallToolAsync("lab__echo_action", new Dictionary<string, object?> { ["text"] = "guess", ["confirmation_token"] = confirmation }));
    }

    private static string RandomHex(Random random, int length)
    {
        var bytes = new byte[(length + 1) / 2];
        random.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes)[..length];
    }
}
