using ControlPlane.Audit.Model;

namespace ControlPlane.Audit.Storage;

/// <summary>
/// The audit database. Append-only: nothing is updated or deleted except by <see cref="PurgeAsync"/>.
/// Implementations: SQLite (embedded default) and PostgreSQL (production). Both pass the same contract tests.
/// </summary>
public interface IAuditStore
{
    /// <summary>Creates or upgrades the schema (migrations under ops/sql/audit). Idempotent; safe from several silos at once.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Appends a batch in one transaction: for each tenant, continues its chain from the stored head
    /// (sequence + 1, previous hash = head hash) and moves the head. Either the whole batch is durable
    /// when this returns, or none of it is and it throws. Safe against concurrent appenders in other
    /// processes (the per-tenant head is locked for the transaction).
    /// </summary>
    Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken);

    Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken);

    /// <summary>Every record that matches, newest first, streamed (cursor and limit ignored).</summary>
    IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, CancellationToken cancellationToken);

    /// <summary>Walks a tenant's chain from its retained start (or retention anchor) to its head.</summary>
    Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes a tenant's records older than <paramref name="before"/>, and records the hash of the last
    /// deleted record as the tenant's anchor, so the retained chain still verifies. Returns how many were deleted.
    /// </summary>
    Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken);

    /// <summary>Cheap liveness check for health and fail-closed decisions.</summary>
    Task<bool> PingAsync(CancellationToken cancellationToken);
}
