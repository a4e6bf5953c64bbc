using System.Diagnostics;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Upstreams;

/// <summary>
/// Upstreams across silos, an HTTP upstream that goes away and comes back, and the per-silo process limit: each on
/// real hosts with real upstream processes, driven by the SDK's MCP client.
/// </summary>
public sealed class UpstreamResilienceTests
{
    private static readonly Dictionary<string, string?> FastUpstreams = new()
    {
        ["ControlPlane:Upstreams:MinRestartDelay"] = "00:00:00.200",
        ["ControlPlane:Upstreams:MaxRestartDelay"] = "00:00:02",
        ["ControlPlane:Upstreams:RegistryPollInterval"] = "00:00:01",
    };

    [UpstreamFact]
    public async Task A_registration_made_on_one_silo_is_called_on_the_other_and_removal_stops_both()
    {
        await using var first = await ControlPlaneTestHost.StartAsync(settings: FastUpstreams);
        await using var second = await ControlPlaneTestHost.StartAsync(dataDir: first.DataDir, primarySiloPort: first.SiloPort, settings: FastUpstreams);
        await first.EnsureTenantAsync("silo-tenant");

        // A global registration and a tenant's own, each with a credential of its own (the lab server reports its length).
        const string globalCredential = "global-cred";
        const string tenantCredential = "silo-tenant-credential-0042";
        await first.RegisterUpstreamAsync(new { id = "lab-silos", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Lab }, env = new Dictionary<string, string> { ["LAB_TOKEN"] = globalCredential }, trustAnnotations = true });
        await first.RegisterUpstreamAsync(new { id = "lab-silos", tenantId = "silo-tenant", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Lab }, env = new Dictionary<string, string> { ["LAB_TOKEN"] = tenantCredential }, trustAnnotations = true });

        // The other silo picks both up from the cluster's registry and decrypts them with the shared key ring.
        await UpstreamHostExtensions.WaitForUpstreamAsync(second.Services, "lab-silos");
        await UpstreamHostExtensions.WaitForUpstreamAsync(second.Services, "lab-silos", tenantId: "silo-tenant");

        var (demoToken, _) = await second.MintAsync("demo", "silo-caller", scopes: ["server:lab-silos:read"]);
        var (tenantToken, _) = await second.MintAsync("silo-tenant", "silo-caller", scopes: ["server:lab-silos:read"]);
        await using var demoOnSecond = await second.ConnectAsync(demoToken);
        await using var tenantOnSecond = await second.ConnectAsync(tenantToken);
        Assert.Equal(globalCredential.Length.ToString(), RefusalAssert.Text(await demoOnSecond.CallToolAsync("lab-silos__token_length")));
        Assert.Equal(tenantCredential.Length.ToString(), RefusalAssert.Text(await tenantOnSecond.CallToolAsync("lab-silos__token_length")));
        await using (var demoOnFirst = await first.ConnectAsync(demoToken))
        {
            Assert.Equal(globalCredential.Length.ToString(), RefusalAssert.Text(await demoOnFirst.CallToolAsync("lab-silos__token_length")));
        }

        // Removed through the first silo: gone from both, processes and tools.
        await first.RemoveUpstreamAsync("lab-silos", "silo-tenant");
        await first.RemoveUpstreamAsync("lab-silos");
        await Eventually.TrueAsync(() => first.Upstream("lab-silos") is null && second.Upstream("lab-silos") is null && second.Upstream("lab-silos", "silo-tenant") is null,
            TimeSpan.FromSeconds(90), "both registrations to go from both silos", poll: TimeSpan.FromMilliseconds(200));

        // The connection goes first and the catalog follows in its own step, so the tool list is given the same bound.
        await Eventually.TrueAsync(async () => !(await demoOnSecond.ListToolsAsync()).Any(t => t.Name == "lab-silos__token_length"), TimeSpan.FromSeconds(90), "the second silo to stop listing the tool", poll: TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<ModelContextProtocol.McpException>(() => tenantOnSecond.CallToolAsync("lab-silos__token_length").AsTask());
    }

    [UpstreamFact]
    public async Task An_http_upstream_that_restarts_is_unavailable_meanwhile_then_reconnected()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: FastUpstreams);
        var port = FreePorts.Next();
        var upstream = StartEverythingOverHttp(port);
        try
        {
            await host.RegisterUpstreamAsync(new { id = "http-restart", transport = "http", url = $"http://127.0.0.1:{port}/mcp", trustAnnotations = true });
            await host.WaitForUpstreamAsync("http-restart");
            var (token, _) = await host.MintAsync("demo", "http-restart-agent", scopes: ["server:http-restart:read"]);
            await using var client = await host.ConnectAsync(token);
            var echo = new Dictionary<string, object?> { ["message"] = "before" };
            RefusalAssert.Succeeded(await client.CallToolAsync("http-restart__echo", echo));

            // The upstream goes away: callers get UPSTREAM_UNAVAILABLE with a retry_after, never a hang
            // (the token below only bounds the test if that promise breaks).
            upstream.Kill(entireProcessTree: true);
            await upstream.WaitForExitAsync();
            for (var i = 0; i < 3; i++)
            {
                using var hangGuard = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                var refusal = RefusalAssert.Refused(await client.CallToolAsync("http-restart__echo", echo, cancellationToken: hangGuard.Token), RefusalCodes.UpstreamUnavailable);
                Assert.True(refusal.GetProperty("retry_after").GetInt32() >= 1);
            }

            // Back on the same address: the gateway reconnects by itself and calls work again.
            upstream = StartEverythingOverHttp(port);
            await Eventually.TrueAsync(async () =>
            {
                var result = await client.CallToolAsync("http-restart__echo", new Dictionary<string, object?> { ["message"] = "after" });
                return result.IsError is not true && RefusalAssert.Text(result).Contains("after", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(90), "calls to reach the restarted upstream", poll: TimeSpan.FromMilliseconds(200));
            Assert.Equal("running", host.Upstream("http-restart")?.Status);
        }
        finally
        {
            upstream.Kill(entireProcessTree: true);
            upstream.Dispose();
        }
    }

    [UpstreamFact]
    public async Task Stdio_upstreams_beyond_MaxProcesses_are_unavailable_until_a_slot_frees()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>(FastUpstreams)
        {
            ["ControlPlane:Upstreams:MaxProcesses"] = "1",
        });
        await host.RegisterNodeAsync("lab-slot-a", UpstreamPackages.Lab, trustAnnotations: true);
        await host.RegisterUpstreamAsync(new { id = "lab-slot-b", transport = "stdio", command = "node", args = new[] { UpstreamPackages.Lab }, trustAnnotations = true });
        await Eventually.TrueAsync(() => host.Upstream("lab-slot-b")?.Status == "queued", TimeSpan.FromSeconds(90), "the second upstream to queue for a process slot", poll: TimeSpan.FromMilliseconds(200));

        var (token, _) = await host.MintAsync("demo", "slot-agent", scopes: ["server:lab-slot-a:read", "server:lab-slot-b:read"]);
        await using var client = await host.ConnectAsync(token, "/mcp/lab-slot-b");
        var hello = new Dictionary<string, object?> { ["text"] = "hello" };
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("echo", hello), RefusalCodes.UpstreamUnavailable);
        Assert.Contains("MaxProcesses", refusal.GetProperty("message").GetString(), StringComparison.Ordinal);

        await using (var other = await host.ConnectAsync(token))
        {
            RefusalAssert.Succeeded(await other.CallToolAsync("lab-slot-a__echo", hello));
            var onAggregate = RefusalAssert.Refused(await other.CallToolAsync("lab-slot-b__echo", hello), RefusalCodes.UpstreamUnavailable);
            Assert.Contains("MaxProcesses", onAggregate.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // Freeing the slot lets the waiting one start.
        await host.RemoveUpstreamAsync("lab-slot-a");
        await host.WaitForUpstreamAsync("lab-slot-b");
        RefusalAssert.Succeeded(await client.CallToolAsync("echo", hello));
    }

    private static Process StartEverythingOverHttp(int port)
    {
        var process = Process.Start(new ProcessStartInfo("node", [UpstreamPackages.Everything, "streamableHttp"])
        {
            Environment = { ["PORT"] = port.ToString() },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;

        // Drained, so a chatty server never blocks on a full pipe.
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
