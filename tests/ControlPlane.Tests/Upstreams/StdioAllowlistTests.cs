using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// A stdio upstream runs with the silo's rights: only an admin who sees every tenant registers one, only with a command on
/// the deployment's allowlist, and the allowlist is checked again at every start.
/// </summary>
public sealed class StdioAllowlistTests
{
    private const string Key = "ControlPlane:Upstreams:Stdio:AllowedCommands";

    [UpstreamFact]
    public async Task Registration_needs_an_all_tenant_admin_and_an_allowed_command_and_limited_admins_register_http_only()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?> { [Key + ":0"] = "/opt/trusted/mcp-server" });
        using var admin = host.OperatorHttp();

        var notAllowed = await admin.PostAsJsonAsync("/api/v1/servers", new { id = "stdio-node", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Lab } });
        Assert.Equal(HttpStatusCode.BadRequest, notAllowed.StatusCode);
        var message = JsonDocument.Parse(await notAllowed.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("command")[0].GetString();
        Assert.Contains(Key, message, StringComparison.Ordinal);
        Assert.Contains("'node'", message, StringComparison.Ordinal);

        // Exact commands: a path to the same program is another command.
        var otherSpelling = await admin.PostAsJsonAsync("/api/v1/servers", new { id = "stdio-path", transport = "stdio", command = "/opt/trusted/../trusted/mcp-server" });
        Assert.Equal(HttpStatusCode.BadRequest, otherSpelling.StatusCode);

        using var limited = await LimitedAdminAsync(host, "stdio-demo-admin");
        Assert.Equal(HttpStatusCode.Forbidden, (await limited.PostAsJsonAsync("/api/v1/servers",
            new { id = "stdio-mine", tenantId = "demo", transport = "stdio", command = "/opt/trusted/mcp-server" })).StatusCode);
        var http = await limited.PostAsJsonAsync("/api/v1/servers", new { id = "http-mine", tenantId = "demo", transport = "http", url = "https://mcp.example.com/mcp" });
        Assert.Equal(HttpStatusCode.Created, http.StatusCode);
        await host.RemoveUpstreamAsync("http-mine", "demo");
        Assert.DoesNotContain("stdio-", await admin.GetStringAsync("/api/v1/servers"), StringComparison.Ordinal);
    }

    [UpstreamFact]
    public async Task A_registration_stored_before_the_allowlist_changed_does_not_start()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-allow-" + Guid.NewGuid().ToString("N")[..12]);
        var startLog = Path.Combine(Path.GetTempPath(), "cp-allow-start-" + Guid.NewGuid().ToString("N")[..12] + ".log");
        try
        {
            await using (var before = await ControlPlaneTestHost.StartAsync(dataDir))
            {
                await before.RegisterNodeAsync("lab-allow", UpstreamPackages.Lab, env: new() { ["LAB_START_LOG"] = startLog });
            }

            var started = File.ReadAllLines(startLog).Length;
            Assert.True(started >= 1, "the lab server never started before the allowlist changed");

            await using var after = await ControlPlaneTestHost.StartAsync(dataDir, settings: new Dictionary<string, string?> { [Key + ":0"] = "/opt/trusted/mcp-server" });
            await Eventually.TrueAsync(() => after.Upstream("lab-allow")?.Status == "refused", TimeSpan.FromSeconds(60), "the stored registration to be refused");
            Assert.Contains(Key, after.Upstream("lab-allow")!.Problem, StringComparison.Ordinal);

            var (token, _) = await after.MintAsync("demo", "allow-agent", scopes: ["server:lab-allow:read"]);
            await using var client = await after.ConnectAsync(token);
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("lab-allow__echo", new Dictionary<string, object?> { ["text"] = "hi" }), RefusalCodes.UpstreamUnavailable);
            Assert.Contains(Key, refusal.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(started, File.ReadAllLines(startLog).Length);
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            File.Delete(startLog);
        }
    }

    internal static async Task<HttpClient> LimitedAdminAsync(ControlPlaneTestHost host, string id)
    {
        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        var directory = host.Services.GetRequiredService<IGrainFactory>().GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        await directory.UpsertAsync(new OperatorAccount(id, [OperatorRoles.Admin], ["demo"], hash, DateTimeOffset.UtcNow));
        return host.Http(key);
    }
}
