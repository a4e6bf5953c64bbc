using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Auditing;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Audit;

/// <summary>An audit store that can be made unreachable on demand, around the real SQLite store.</summary>
public sealed class SwitchableAuditStore(IAuditStore inner) : IAuditStore
{
    public volatile bool Down;

    private void ThrowIfDown()
    {
        if (Down) throw new IOException("audit store unreachable (test)");
    }

    public Task MigrateAsync(CancellationToken cancellationToken) => inner.MigrateAsync(cancellationToken);

    public Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        return inner.AppendAsync(entries, cancellationToken);
    }

    public Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken) => inner.QueryAsync(query, cancellationToken);

    public IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, CancellationToken cancellationToken) => inner.ExportAsync(query, cancellationToken);

    public Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken) => inner.VerifyAsync(tenantId, cancellationToken);

    public Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken) => inner.PurgeAsync(tenantId, before, cancellationToken);

    public Task<bool> PingAsync(CancellationToken cancellationToken) => Down ? Task.FromResult(false) : inner.PingAsync(cancellationToken);
}

/// <summary>When the audit cannot be made durable, actions do not run and (by default) reads do not return.</summary>
public sealed class AuditFailClosedTests
{
    private static Dictionary<string, object?> Refund(long amount) =>
        new() { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = amount, ["reason"] = "requested" };

    [Fact]
    public async Task An_unreachable_audit_store_refuses_actions_and_withholds_reads()
    {
        var (host, store) = await StartWithSwitchableStoreAsync();
        await using var _ = host;
        await host.SetModeAsync("demo", "support-desk", "read-write");
        await using var client = await host.ConnectAsync();
        var lookup = new Dictionary<string, object?> { ["email"] = "ada@example.com" };

        RefusalAssert.Succeeded(await host.CallConfirmedAsync(client, "create_refund", Refund(111)));
        store.Down = true;

        // Not even an approval request can be opened unaudited.
        RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund(222)), RefusalCodes.AuditUnavailable);

        // The confirmation was granted while auditing worked; the action still must not run unaudited.
        store.Down = false;
        var first = await client.CallToolAsync("create_refund", Refund(222));
        RefusalAssert.Refused(first, RefusalCodes.RequiresConfirmation);
        store.Down = false;
        using (var http = host.OperatorHttp())
        {
            var approved = await http.PostAsync($"/api/v1/approvals/{ControlPlane.Guard.Pipeline.Refusal.Read(first)!.Value.GetProperty("approval_id").GetString()}/approve", null);
            var token = (await approved.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("confirmationToken").GetString();
            store.Down = true;
            RefusalAssert.Refused(await client.CallToolAsync("create_refund", new Dictionary<string, object?>(Refund(222)) { ["confirmation_token"] = token }), RefusalCodes.AuditUnavailable);
        }

        store.Down = true;
        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", lookup), RefusalCodes.AuditUnavailable);
        // A refusal runs nothing, so it still comes back as itself.
        RefusalAssert.Refused(await client.CallToolAsync("create_refund", Refund(0)), RefusalCodes.InvalidArguments);

        store.Down = false;
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", lookup));
        RefusalAssert.Succeeded(await host.CallConfirmedAsync(client, "create_refund", Refund(333)));

        // The refund of 222 never ran: the audit shows 111 and 333 as results, and no intent for 222.
        // (Its approval records exist, written while the store was up.)
        var records = new List<AuditRecord>();
        await foreach (var record in store.ExportAsync(new AuditQuery { TenantIds = ["demo"], Tool = "create_refund", IncludeIntents = true }, CancellationToken.None)) records.Add(record);
        var amounts = records.Where(r => r.Entry.Kind == "tools/call" && r.Entry.Outcome == "success").Select(r => r.Entry.Arguments!).ToList();
        Assert.Equal(2, amounts.Count);
        Assert.Contains(amounts, a => a.Contains("111"));
        Assert.Contains(amounts, a => a.Contains("333"));
        Assert.DoesNotContain(records, r => r.Entry.Kind.StartsWith("tools/call", StringComparison.Ordinal) && r.Entry.Arguments!.Contains("222") && r.Entry.Outcome != "refused");
        Assert.Equal(2, records.Count(r => r.Entry.Kind == "tools/call:intent"));
    }

    [Fact]
    public async Task A_confirmed_action_refused_because_its_intent_was_not_durable_runs_on_retry_with_the_same_token()
    {
        var (host, store) = await StartWithSwitchableStoreAsync();
        await using var _ = host;
        await host.SetModeAsync("demo", "support-desk", "read-write");
        await using var client = await host.ConnectAsync();

        var first = await client.CallToolAsync("create_refund", Refund(444));
        RefusalAssert.Refused(first, RefusalCodes.RequiresConfirmation);
        using var http = host.OperatorHttp();
        var approved = await http.PostAsync($"/api/v1/approvals/{ControlPlane.Guard.Pipeline.Refusal.Read(first)!.Value.GetProperty("approval_id").GetString()}/approve", null);
        var token = (await approved.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("confirmationToken").GetString();
        var confirmed = new Dictionary<string, object?>(Refund(444)) { ["confirmation_token"] = token };

        // The intent cannot be recorded: the action does not run, and the agent is told to retry...
        store.Down = true;
        RefusalAssert.Refused(await client.CallToolAsync("create_refund", confirmed), RefusalCodes.AuditUnavailable);

        // ...and the retry with the same token works once the store is back: the consumption made alongside the failed
        // intent was undone, so the human need not approve again. The token is then used up for good.
        store.Down = false;
        RefusalAssert.Succeeded(await client.CallToolAsync("create_refund", confirmed));
        RefusalAssert.Refused(await client.CallToolAsync("create_refund", confirmed), RefusalCodes.RequiresConfirmation);
    }

    /// <summary>A host whose audit store is the real SQLite one behind a switch the test can turn off.</summary>
    private static async Task<(ControlPlaneTestHost Host, SwitchableAuditStore Store)> StartWithSwitchableStoreAsync()
    {
        SwitchableAuditStore? store = null;
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-failclosed-" + Guid.NewGuid().ToString("N")[..10]);
        var host = await ControlPlaneTestHost.StartAsync(dataDir, configureServices: services =>
            services.AddSingleton<IAuditStore>(_ => store = new SwitchableAuditStore(new SqliteAuditStore(Path.Combine(dataDir, "audit.db")))));
        return (host, store!);
    }

    [Fact]
    public async Task Retention_purges_old_records_audits_the_purge_and_keeps_the_chain_verifiable()
    {
        await using var host = await ControlPlaneTestHost.StartAsync();
        var store = host.Services.GetRequiredService<IAuditStore>();
        var now = DateTimeOffset.UtcNow;
        var entries = Enumerable.Range(0, 30).Select(i => new AuditEntry
        {
            Id = $"old-{i}",
            Timestamp = now.AddDays(i < 20 ? -40 + i * 0.1 : -1),
            TenantId = "retained",
            Kind = "tools/call",
            Decision = "allowed",
            Outcome = "success",
            Tool = "list_orders",
            Server = "support-desk",
        }).ToList();
        await store.AppendAsync(entries, CancellationToken.None);
        // Created after the backdated records are in its chain, so the chain stays in time order (the purge cuts a prefix
        // of the chain): the tenant's creation is then a recent operator event, as it would be in real life.
        await host.EnsureTenantAsync("retained");

        using (var admin = host.OperatorHttp())
        {
            var set = await admin.PutAsJsonAsync("/api/v1/tenants/retained/audit-retention", new { days = 30 });
            Assert.True(set.IsSuccessStatusCode);
        }

        var results = await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IAuditRetentionGrain>(IAuditRetentionGrain.Singleton).RunAsync();
        var retained = Assert.Single(results, r => r.TenantId == "retained");
        Assert.Equal(30, retained.RetentionDays);
        Assert.Equal(20, retained.Purged);

        var left = new List<AuditRecord>();
        await foreach (var record in store.ExportAsync(new AuditQuery { TenantIds = ["retained"] }, CancellationToken.None)) left.Add(record);
        // The ten recent calls and the purge record; the tenant's creation and the retention change are operator events, kept too.
        Assert.Equal(11, left.Count(r => !r.Entry.Kind.StartsWith("operator/", StringComparison.Ordinal)));
        Assert.Single(left, r => r.Entry.Kind == "operator/audit-retention.set" && r.Entry.Detail!.Contains("days=30", StringComparison.Ordinal));
        Assert.Contains(left, r => r.Entry.Kind == "retention/purge" && r.Entry.Detail!.Contains("Purged 20"));
        Assert.True((await store.VerifyAsync("retained", CancellationToken.None)).Ok);
    }
}
