using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ControlPlane.Tests.Guard;

/// <summary>
/// When a grain the guard needs cannot answer (its silo just died, its storage is down), the call is refused with
/// GUARD_UNAVAILABLE, audited, and nothing runs; once the grain answers again, calls go through.
/// </summary>
public sealed class GuardUndecidedTests
{
    [Fact]
    public async Task A_guard_step_that_cannot_reach_its_grain_refuses_with_GUARD_UNAVAILABLE_and_audits_it()
    {
        UnreachableRateLimits? limits = null;
        await using var host = await ControlPlaneTestHost.StartAsync(configureServices: services => services.Replace(ServiceDescriptor.Singleton(sp =>
        {
            limits = new UnreachableRateLimits(sp.GetRequiredService<RateLimitStep>());
            return GuardPipeline.Create(sp, step => step is RateLimitStep ? limits : step);
        })));
        await using var client = await host.ConnectAsync();
        var lookup = new Dictionary<string, object?> { ["email"] = "ada@example.com" };

        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));

        limits!.Unreachable = true;
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", lookup), "GUARD_UNAVAILABLE");
        Assert.True(refusal.GetProperty("retry_after").GetInt32() > 0);

        limits.Unreachable = false;
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));

        using var admin = host.OperatorHttp();
        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&tool=lookup_customer_by_email&decision=refused");
        var codes = audit.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("code").GetString()).ToList();
        Assert.Contains("GUARD_UNAVAILABLE", codes);
    }

    /// <summary>The real confirmation step, whose reservations then fail to be consumed, as when approval storage is down.</summary>
    private sealed class FailingConsumption(ConfirmationStep inner) : IGuardStep
    {
        public volatile bool Fail;

        public string Name => inner.Name;

        public async ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
        {
            var refusal = await inner.CheckAsync(call, cancellationToken);
            if (Fail && call.ReservedConfirmation is { } held) call.ReservedConfirmation = new Failing(held);
            return refusal;
        }

        private sealed class Failing(IReservedConfirmation held) : IReservedConfirmation
        {
            public Task<bool> ConsumeAsync() => Task.FromException<bool>(new InvalidOperationException("approval storage is down (test)"));

            public Task ReleaseAsync() => held.ReleaseAsync();

            public Task<bool> RestoreAsync() => held.RestoreAsync();
        }
    }

    [Fact]
    public async Task A_confirmed_action_whose_token_cannot_be_marked_used_does_not_run_and_the_token_then_works_once()
    {
        FailingConsumption? confirmation = null;
        await using var host = await ControlPlaneTestHost.StartAsync(configureServices: services => services.Replace(ServiceDescriptor.Singleton(sp =>
        {
            confirmation = new FailingConsumption(sp.GetRequiredService<ConfirmationStep>());
            return GuardPipeline.Create(sp, step => step is ConfirmationStep ? confirmation : step);
        })));
        await host.SetModeAsync("demo", "support-desk", "read-write");
        await using var client = await host.ConnectAsync();
        var refund = new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 4321L, ["reason"] = "duplicate" };

        var approvalId = RefusalAssert.Refused(await client.CallToolAsync("create_refund", refund), "REQUIRES_CONFIRMATION").GetProperty("approval_id").GetString()!;
        using var admin = host.OperatorHttp();
        var approve = await admin.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
        Assert.True(approve.IsSuccessStatusCode);
        var token = (await approve.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("confirmationToken").GetString()!;
        var confirmed = new Dictionary<string, object?>(refund) { ["confirmation_token"] = token };

        // The consumption is not durable, so the refund does not run, and the caller is told to retry with the same token.
        confirmation!.Fail = true;
        var undecided = RefusalAssert.Refused(await client.CallToolAsync("create_refund", confirmed), "GUARD_UNAVAILABLE");
        Assert.True(undecided.GetProperty("retry_after").GetInt32() > 0);

        // The token was given back, not burned: the retry runs the refund, once.
        confirmation.Fail = false;
        RefusalAssert.Succeeded(await client.CallToolAsync("create_refund", confirmed));
        var replay = RefusalAssert.Refused(await client.CallToolAsync("create_refund", confirmed), "REQUIRES_CONFIRMATION");
        Assert.Contains("already used", replay.GetProperty("reason").GetString());

        var audit = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&tool=create_refund&limit=100")).GetProperty("items").EnumerateArray().ToList();
        Assert.Single(audit, i => i.GetProperty("kind").GetString() == "tools/call" && i.GetProperty("outcome").GetString() == "success"
            && i.GetProperty("confirmationId").GetString() == approvalId);
        Assert.Contains(audit, i => i.GetProperty("decision").GetString() == "refused" && i.GetProperty("code").GetString() == "GUARD_UNAVAILABLE");
    }
}
