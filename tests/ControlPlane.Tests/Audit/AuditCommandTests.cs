using ControlPlane.Host.Hosting;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Tests.Audit;

/// <summary>The verify command an operator runs against a data directory: 0 when intact, 1 when tampered with.</summary>
public sealed class AuditCommandTests
{
    [Fact]
    public async Task Verify_reports_an_intact_chain_and_then_the_tampering()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-verify-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            await using (var host = await ControlPlaneTestHost.StartAsync(dataDir))
            {
                await using var client = await host.ConnectAsync();
                for (var i = 0; i < 5; i++) await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001" });
            }

            string[] verify = ["verify", "--tenant", "demo", $"--ControlPlane:DataDir={dataDir}"];
            Assert.Equal(0, await AuditCommand.RunAsync(verify));

            await using (var connection = new SqliteConnection($"Data Source={Path.Combine(dataDir, "audit.db")};Pooling=false"))
            {
                await connection.OpenAsync();
                var command = connection.CreateCommand();
                command.CommandText = "UPDATE audit_records SET outcome = 'error' WHERE tenant_id = 'demo' AND seq = 3";
                Assert.Equal(1, await command.ExecuteNonQueryAsync());
            }

            Assert.Equal(1, await AuditCommand.RunAsync(verify));
            Assert.Equal(2, await AuditCommand.RunAsync(["verify"]));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }
}
