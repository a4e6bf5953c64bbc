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
    /// <summary>The real rate-limit step, made to fail the way an unreachable bucket grain does.</summary>
    private sealed class UnreachableRateLimits(RateLimitStep inner) : IGuardStep
    {
        public volatile bool Unreachable;

        public string Name => inner.Name;

        public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken) =>
            Unreachable
                ? throw new Orleans.Runtime.SiloUnavailableException("bucket grain's silo is gone (test)")
                : inner.CheckAsync(call, cancellationToken);
    }

    [Fact]
    public async Task A_guard_step_that_cannot_reach_its_grain_refuses_with_GUARD_UNAVAILABLE_and_audits_it()
    {
        UnreachableRateLimits? limits = null;
        await using var host = await ControlPlaneTestHost.StartAsync(configureServices: services => services.Replace(ServiceDescriptor.Singleton(sp =>
        {
            limits = new UnreachableRateLimits(sp.GetRequiredService<RateLimitStep>());
            return new GuardPipeline(
            [
                sp.GetRequiredService<KillSwitchStep>(),
                sp.GetRequiredService<AuthenticationStep>(),
                sp.GetRequiredService<ScopeStep>(),
                sp.GetRequiredService<ModeStep>(),
                sp.GetRequiredService<SchemaStep>(),
                limits,
                sp.GetRequiredService<ConfirmationStep>(),
            ]);
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
}
