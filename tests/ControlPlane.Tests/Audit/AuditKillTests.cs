using System.Collections.Concurrent;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Audit;

/// <summary>
/// The audit trail's promise under the worst case: a silo process SIGKILLed under load. Every call a client
/// saw complete must be in the store afterwards, and the chain must still verify. With SQLite's synchronous=NORMAL
/// too: it skips the fsync, which only power loss can punish, never the death of the process.
/// </summary>
public sealed class AuditKillTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("Full")]
    [InlineData("Normal")]
    public async Task No_completed_call_is_missing_from_the_audit_after_SIGKILL_under_load(string sqliteSynchronous)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-kill-" + Guid.NewGuid().ToString("N")[..10]);
        var completed = new ConcurrentBag<string>();
        var failedAfterKill = 0;
        try
        {
            await using (var host = await HostProcess.StartAsync(dataDir, new Dictionary<string, string> { ["ControlPlane__Audit__SqliteSynchronous"] = sqliteSynchronous }))
            {
                var clients = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
                {
                    Endpoint = new Uri(host.BaseUrl, "/mcp"),
                    TransportMode = HttpTransportMode.StreamableHttp,
                    AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + host.Credentials.AgentToken },
                }))));

                using var stop = new CancellationTokenSource();
                var killing = 0;
                var counter = 0;
                var load = clients.Select((client, worker) => Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        // A unique, non-PII argument per call, so each call can be found in the store by value.
                        var marker = $"cust_K{worker:D2}{Interlocked.Increment(ref counter):D9}";
                        try
                        {
                            await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = marker });
                            completed.Add(marker);
                        }
                        catch (Exception) when (Volatile.Read(ref killing) == 1)
                        {
                            Interlocked.Increment(ref failedAfterKill);
                            return;
                        }
                    }
                })).ToList();

                // At least 3 s and enough completed calls to mean something, however slowly a cold process starts here.
                await Task.Delay(TimeSpan.FromSeconds(3));
                for (var deadline = DateTime.UtcNow.AddSeconds(60); completed.Count <= 60 && DateTime.UtcNow < deadline;) await Task.Delay(100);
                Volatile.Write(ref killing, 1);
                host.Kill();
                stop.Cancel();
                await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(60));
                foreach (var client in clients)
                {
                    try { await client.DisposeAsync(); } catch (Exception) { }
                }
            }

            Assert.True(completed.Count > 50, $"The load was too light to mean anything: {completed.Count} calls.");

            var store = new SqliteAuditStore(Path.Combine(dataDir, "audit.db"));
            var recorded = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var record in store.ExportAsync(new AuditQuery { TenantIds = ["demo"] }, CancellationToken.None))
            {
                if (record.Entry.Kind == "tools/call" && record.Entry.Arguments is { } args
                    && System.Text.Json.JsonDocument.Parse(args).RootElement.TryGetProperty("customer_id", out var id))
                {
                    recorded.Add(id.GetString()!);
                }
            }

            var missing = completed.Where(marker => !recorded.Contains(marker)).ToList();
            output.WriteLine($"calls completed before the kill: {completed.Count}; in flight when killed: {failedAfterKill}; tools/call records: {recorded.Count}; missing: {missing.Count}");
            Assert.Empty(missing);

            var verification = await store.VerifyAsync("demo", CancellationToken.None);
            Assert.True(verification.Ok, $"Chain broken after SIGKILL: {verification.Problem} at {verification.FirstBroken}");
        }
        finally
        {
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }
}
