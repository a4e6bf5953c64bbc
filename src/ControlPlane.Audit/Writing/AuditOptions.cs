namespace ControlPlane.Audit.Writing;

/// <summary>What the guard does with a read call when its audit record cannot be made durable.</summary>
public enum ReadAuditPolicy
{
    /// <summary>Refuse with AUDIT_UNAVAILABLE: no unaudited data leaves (the default).</summary>
    FailClosed,

    /// <summary>Return the result anyway and log the gap. Actions always fail closed, whatever this says.</summary>
    FailOpen,
}

public enum AuditProvider
{
    Sqlite,
    PostgreSQL,
}

/// <summary>When an acknowledged SQLite audit batch is safe: SQLite's <c>synchronous</c> setting, in WAL mode.</summary>
public enum SqliteSynchronous
{
    /// <summary>The WAL is fsynced on every commit: a batch the writer acknowledged survives power loss (the default).</summary>
    Full,

    /// <summary>
    /// The WAL is written on every commit and fsynced at checkpoints: an acknowledged batch survives the process dying
    /// (the OS has it), but power loss or an OS crash can lose the last commits. Saves an fsync per call.
    /// </summary>
    Normal,
}

/// <summary>Audit settings, bound from <c>ControlPlane:Audit</c>.</summary>
public sealed class AuditOptions
{
    public const string SectionName = "ControlPlane:Audit";

    public AuditProvider Provider { get; set; } = AuditProvider.Sqlite;

    /// <summary>PostgreSQL connection string (production), or the SQLite file path (defaults to DataDir/audit.db).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Base64 key (at least 32 bytes) for the keyed argument hash. Required in production; the embedded
    /// default generates one under the data directory on first start.
    /// </summary>
    public string? HashKey { get; set; }

    public ReadAuditPolicy ReadPolicy { get; set; } = ReadAuditPolicy.FailClosed;

    /// <summary>SQLite store only: whether commits are fsynced (Full) or only written to the OS (Normal).</summary>
    public SqliteSynchronous SqliteSynchronous { get; set; } = SqliteSynchronous.Full;

    /// <summary>Most records written in one transaction.</summary>
    public int MaxBatch { get; set; } = 500;

    /// <summary>Records waiting to be written before new ones are refused rather than queued without bound.</summary>
    public int QueueCapacity { get; set; } = 50_000;

    /// <summary>Default retention for tenants without their own, in days.</summary>
    public int RetentionDays { get; set; } = 90;

    /// <summary>How often the retention reminder purges expired records (Orleans reminders fire at most once a minute).</summary>
    public TimeSpan RetentionRunInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Per-tool redaction rules: <c>serverId/toolName</c> to JSON pointers whose values are never stored.</summary>
    public Dictionary<string, List<string>> RedactPointers { get; set; } = new(StringComparer.Ordinal);
}
