using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// Two embedded hosts joined into one cluster (the contract's PrimarySiloPort + shared data directory):
/// a switch flipped through one host's API refuses the very next call entering the other.
/// </summary>
public sealed class TwoSiloTests
{
    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task A_flip_on_one_silo_refuses_the_next_call_on_the_other()
    {
        await using var first = await ControlPlaneTestHost.StartAsync();
        await using var second = await ControlPlaneTestHost.StartAsync(dataDir: first.DataDir, primarySiloPort: first.SiloPort);
        Assert.Equal(first.Credentials.AgentToken, second.Credentials.AgentToken);

        await using var onFirst = await first.ConnectAsync();
        await using var onSecond = await second.ConnectAsync();
        RefusalAssert.Succeeded(await onSecond.CallToolAsync("lookup_customer_by_email", Ada));

        for (var round = 0; round < 3; round++)
        {
            var switchId = await first.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "round " + round });
            RefusalAssert.Refused(await onSecond.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
            RefusalAssert.Refused(await onFirst.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);

            await second.ClearAsync(switchId);
            RefusalAssert.Succeeded(await onFirst.CallToolAsync("lookup_customer_by_email", Ada));
            RefusalAssert.Succeeded(await onSecond.CallToolAsync("lookup_customer_by_email", Ada));
        }
    }

    [Fact]
    public async Task A_restarted_host_keeps_its_credentials_and_kill_state()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-restart-" + Guid.NewGuid().ToString("N")[..12]);
        string switchId;
        string token;
        await using (var host = await ControlPlaneTestHost.StartAsync(dataDir))
        {
            token = host.Credentials.AgentToken;
            switchId = await host.KillAsync(new { scope = "user", tenantId = "demo", userId = "demo-user", reason = "kept across restart" });
            File.Copy(Path.Combine(dataDir, "demo-credentials.json"), Path.Combine(dataDir, "before.json"));
        }

        await using var restarted = await ControlPlaneTestHost.StartAsync(dataDir: dataDir);
        Assert.Equal(token, restarted.Credentials.AgentToken);
        Assert.Equal(File.ReadAllText(Path.Combine(dataDir, "before.json")), File.ReadAllText(Path.Combine(dataDir, "demo-credentials.json")));

        await using var client = await restarted.ConnectAsync();
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
        Assert.Equal("user", refusal.GetProperty("scope").GetString());

        await restarted.ClearAsync(switchId);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));
        Directory.Delete(dataDir, recursive: true);
    }
}
