namespace ControlPlane.Auditing;

/// <summary>What one retention run did for one tenant.</summary>
[GenerateSerializer, Immutable, Alias("cp.RetentionResult")]
public sealed record RetentionResult(
    [property: Id(0)] string TenantId,
    [property: Id(1)] int RetentionDays,
    [property: Id(2)] DateTimeOffset Before,
    [property: Id(3)] long Purged);

/// <summary>Enforces audit retention per tenant on a schedule (an Orleans reminder). One instance.</summary>
[Alias("cp.IAuditRetentionGrain")]
public interface IAuditRetentionGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    /// <summary>Registers the reminder if it is not there yet. Idempotent; called at every silo start.</summary>
    [Alias("EnsureScheduled")]
    Task EnsureScheduledAsync(TimeSpan period);

    /// <summary>Purges every tenant's records older than its retention, now. Each purge is itself audited.</summary>
    [Alias("Run")]
    Task<RetentionResult[]> RunAsync();
}
