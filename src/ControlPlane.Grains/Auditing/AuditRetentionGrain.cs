using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Audit.Writing;
using ControlPlane.Auditing;
using ControlPlane.Tenants;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Grains.Auditing;

/// <summary>
/// Purges audit records past each tenant's retention when its reminder fires. The store keeps the hash
/// of the last purged record as an anchor, so the retained chain still verifies; each purge is audited.
/// </summary>
public sealed partial class AuditRetentionGrain(
    IAuditStore store,
    AuditWriter writer,
    IOptions<AuditOptions> options,
    TimeProvider time,
    ILogger<AuditRetentionGrain> logger) : Grain, IAuditRetentionGrain, IRemindable
{
    private const string ReminderName = "audit-retention";

    public async Task EnsureScheduledAsync(TimeSpan period)
    {
        // Register-or-update is idempotent; it also picks up a changed interval.
        await this.RegisterOrUpdateReminder(ReminderName, period, period);
    }

    public async Task<RetentionResult[]> RunAsync()
    {
        var results = new List<RetentionResult>();
        var now = time.GetUtcNow();
        // The cluster chain (operator actions that reach every tenant) keeps the deployment default.
        var chains = (await GrainFactory.GetGrain<ITenantDirectoryGrain>(ITenantDirectoryGrain.Singleton).ListAsync()).Select(t => t.Id).Append(AuditTenants.Cluster);
        foreach (var tenantId in chains)
        {
            var days = tenantId == AuditTenants.Cluster ? options.Value.RetentionDays
                : await GrainFactory.GetGrain<ITenantGrain>(tenantId).GetAuditRetentionAsync() ?? options.Value.RetentionDays;
            var before = now - TimeSpan.FromDays(days);
            var purged = await store.PurgeAsync(tenantId, before, CancellationToken.None);
            if (purged > 0)
            {
                await writer.AppendAsync(new AuditEntry
                {
                    Id = Guid.CreateVersion7().ToString("N"),
                    Timestamp = now,
                    TenantId = tenantId,
                    Kind = "retention/purge",
                    Decision = "allowed",
                    Outcome = "success",
                    Detail = $"Purged {purged} records older than {before:O} ({days}-day retention).",
                });
                LogPurged(logger, purged, tenantId, days);
            }

            results.Add(new RetentionResult(tenantId, days, before, purged));
        }

        return [.. results];
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == ReminderName) await RunAsync();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Audit retention purged {Count} records of tenant {TenantId} ({Days} days).")]
    private static partial void LogPurged(ILogger logger, long count, string tenantId, int days);
}
