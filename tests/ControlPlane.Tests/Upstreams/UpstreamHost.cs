using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Upstreams;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Upstreams;

/// <summary>Where the real upstream servers live once <c>npm ci</c> ran in ops/upstreams (as .ci/run does).</summary>
internal static class UpstreamPackages
{
    public static readonly string Root = FindRepoRoot();

    public static string Directory => Path.Combine(Root, "ops", "upstreams");

    public static string Filesystem => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "server-filesystem", "dist", "index.js");

    public static string Everything => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js");

    public static string Memory => Path.Combine(Directory, "node_modules", "@modelcontextprotocol", "server-memory", "dist", "index.js");

    /// <summary>The misbehaving test server (crash, hang, wait for cancellation), ours, with no dependencies.</summary>
    public static string Lab => Path.Combine(Directory, "lab-upstream.mjs");

    public static bool Installed => File.Exists(Filesystem) && File.Exists(Everything) && File.Exists(Memory);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ControlPlane.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("ControlPlane.sln not found above the test binaries.");
    }
}

/// <summary>
/// A test that needs the real npm MCP servers; skipped, saying how to install them, only on a developer's machine
/// without them. Under CI (CI=true) it runs regardless, so a missing install fails instead of passing silently.
/// </summary>
public sealed class UpstreamFactAttribute : FactAttribute
{
    public UpstreamFactAttribute()
    {
        if (!UpstreamPackages.Installed && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Skip = $"The npm MCP servers are not installed: run `npm ci` in {UpstreamPackages.Directory} (.ci/run does).";
        }
    }
}

/// <summary>One control plane host for the upstream tests, with short restart and hang-detection delays.</summary>
public sealed class UpstreamHostFixture : IAsyncLifetime
{
    public ControlPlaneTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
    {
        ["ControlPlane:Upstreams:MinRestartDelay"] = "00:00:00.200",
        ["ControlPlane:Upstreams:MaxRestartDelay"] = "00:00:02",
        ["ControlPlane:Upstreams:PingTimeout"] = "00:00:02",
        ["ControlPlane:Upstreams:RegistryPollInterval"] = "00:00:01",
        ["ControlPlane:Downstream:Servers:lab-hang:Timeout"] = "00:00:03",
    });

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class UpstreamHostCollection : ICollectionFixture<UpstreamHostFixture>
{
    public const string Name = "upstream host";
}

internal static class UpstreamHostExtensions
{
    public static async Task<JsonElement> RegisterUpstreamAsync(this ControlPlaneTestHost host, object body)
    {
        using var http = host.OperatorHttp();
        var response = await http.PostAsJsonAsync("/api/v1/servers", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Registering failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task RemoveUpstreamAsync(this ControlPlaneTestHost host, string id, string? tenantId = null)
    {
        using var http = host.OperatorHttp();
        var response = await http.DeleteAsync($"/api/v1/servers/{id}{(tenantId is null ? "" : "?tenantId=" + tenantId)}");
        Assert.True(response.IsSuccessStatusCode, $"Removing failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// Registers a stdio server run by node and waits until its tools are in the catalog. <paramref name="trustAnnotations"/>
    /// lets the server's readOnlyHint classify its tools (the registering admin sees every tenant); without it every tool is an action.
    /// </summary>
    public static async Task RegisterNodeAsync(this ControlPlaneTestHost host, string id, string script, string[]? args = null,
        Dictionary<string, string>? env = null, string? tenantId = null, bool trustAnnotations = false)
    {
        await host.RegisterUpstreamAsync(new { id, tenantId, transport = "stdio", command = "node", args = (string[])[script, .. args ?? []], env, trustAnnotations });
        await host.WaitForUpstreamAsync(id, tenantId: tenantId);
    }

    /// <summary>Waits until the upstream runs on this silo with its tools listed (process start and discovery take a moment on a busy machine).</summary>
    public static Task WaitForUpstreamAsync(this ControlPlaneTestHost host, string id, int restartsAtLeast = 0, string? tenantId = null) =>
        WaitForUpstreamAsync(host.Services, id, restartsAtLeast, tenantId);

    /// <summary>Waits until one registration (global, or a tenant's own) runs on the silo of <paramref name="services"/> with its tools listed.</summary>
    public static async Task WaitForUpstreamAsync(IServiceProvider services, string id, int restartsAtLeast = 0, string? tenantId = null)
    {
        var gateway = services.GetRequiredService<UpstreamGateway>();
        var catalog = services.GetRequiredService<ToolCatalog>();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var view = gateway.List().FirstOrDefault(v => v.Id == id && v.TenantId == tenantId);
            if (view is { Status: "running" } && view.Restarts >= restartsAtLeast && catalog.ForRegistration(id, tenantId).Any()) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Upstream '{id}' ({tenantId ?? "global"}) did not come up (last seen: {view}).");
            await Task.Delay(100);
        }
    }

    public static UpstreamView? Upstream(this ControlPlaneTestHost host, string id, string? tenantId = null) =>
        host.Services.GetRequiredService<UpstreamGateway>().List().FirstOrDefault(v => v.Id == id && v.TenantId == tenantId);
}
