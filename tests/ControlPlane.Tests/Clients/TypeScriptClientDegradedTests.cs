using System.Text.Json;
using ControlPlane.Audit.Storage;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Tests.Audit;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ControlPlane.Tests.Clients;

/// <summary>
/// The two refusals of a degraded control plane, AUDIT_UNAVAILABLE and GUARD_UNAVAILABLE, reach the official TypeScript
/// client as results it reads (not -32602 throws), for a tool with an outputSchema and one without.
/// </summary>
public sealed class TypeScriptClientDegradedTests
{
    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task Audit_unavailable_is_a_result_the_client_reads()
    {
        SwitchableAuditStore? store = null;
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-ts-audit-" + Guid.NewGuid().ToString("N")[..10]);
        await using var host = await ControlPlaneTestHost.StartAsync(dataDir, configureServices: services =>
            services.AddSingleton<IAuditStore>(_ => store = new SwitchableAuditStore(new SqliteAuditStore(Path.Combine(dataDir, "audit.db")))));
        var (token, _) = await host.MintAsync("demo", "ts-audit-agent", scopes: ["server:support-desk:read", "server:lab:read"]);
        await using var ts = await TypeScriptMcpClient.ConnectAsync(new Uri(host.BaseUrl, "/mcp"), token);
        Assert.True(ts.ValidatesOutputOf("lookup_customer_by_email"));

        store!.Down = true;
        AssertReadable(await ts.CallToolAsync("lookup_customer_by_email", Ada), "AUDIT_UNAVAILABLE", declaresSchema: true);
        AssertReadable(await ts.CallToolAsync("lab__flaky"), "AUDIT_UNAVAILABLE", declaresSchema: false);
    }

    [Fact]
    public async Task Guard_unavailable_is_a_result_the_client_reads()
    {
        UnreachableRateLimits? limits = null;
        await using var host = await ControlPlaneTestHost.StartAsync(configureServices: services => services.Replace(ServiceDescriptor.Singleton(sp =>
        {
            limits = new UnreachableRateLimits(sp.GetRequiredService<RateLimitStep>());
            return GuardPipeline.Create(sp, step => step is RateLimitStep ? limits : step);
        })));
        var (token, _) = await host.MintAsync("demo", "ts-guard-agent", scopes: ["server:support-desk:read", "server:lab:read"]);
        await using var ts = await TypeScriptMcpClient.ConnectAsync(new Uri(host.BaseUrl, "/mcp"), token);

        limits!.Unreachable = true;
        AssertReadable(await ts.CallToolAsync("lookup_customer_by_email", Ada), "GUARD_UNAVAILABLE", declaresSchema: true);
        AssertReadable(await ts.CallToolAsync("lab__flaky"), "GUARD_UNAVAILABLE", declaresSchema: false);
    }

    /// <summary>callTool returned (it did not throw): isError, the refusal JSON first, no structuredContent where a schema is advertised.</summary>
    private static void AssertReadable(JsonElement result, string code, bool declaresSchema)
    {
        Assert.True(result.TryGetProperty("isError", out var isError) && isError.GetBoolean(), $"Expected {code}, got: {result}");
        var refusal = JsonDocument.Parse(result.GetProperty("content")[0].GetProperty("text").GetString()!).RootElement;
        Assert.Equal(code, refusal.GetProperty("code").GetString());
        Assert.True(refusal.GetProperty("retry_after").GetInt32() > 0);
        if (declaresSchema) Assert.False(result.TryGetProperty("structuredContent", out _), "A refusal of a tool with an outputSchema carried structuredContent: " + result);
    }
}
