namespace ControlPlane.Audit.Model;

/// <summary>
/// One audit record as the guard hands it over: already redacted, hashed and free of secrets.
/// The store assigns <see cref="AuditRecord.Sequence"/> and the chain hashes when it appends.
/// </summary>
public sealed record AuditEntry
{
    /// <summary>Unique id of this record (a call id, or a call id with a suffix for its outcome record).</summary>
    public required string Id { get; init; }

    public required DateTimeOffset Timestamp { get; init; }

    public required string TenantId { get; init; }

    public string? AgentId { get; init; }

    public string? UserId { get; init; }

    public string? SessionId { get; init; }

    public string? TokenId { get; init; }

    /// <summary>What happened: <c>tools/call</c>, <c>tools/list</c>, <c>tools/call:intent</c>, or an operator event such as <c>retention/purge</c>.</summary>
    public required string Kind { get; init; }

    public string? Server { get; init; }

    /// <summary>The tool's own name (no server prefix).</summary>
    public string? Tool { get; init; }

    /// <summary>Redacted arguments as canonical JSON, or null.</summary>
    public string? Arguments { get; init; }

    /// <summary>Hex HMAC-SHA256 of the canonical, unredacted arguments under the deployment's audit key.</summary>
    public string? ArgumentsHash { get; init; }

    /// <summary><c>allowed</c> or <c>refused</c>.</summary>
    public required string Decision { get; init; }

    /// <summary>The refusal code when refused.</summary>
    public string? Code { get; init; }

    /// <summary><c>success</c>, <c>error</c>, <c>refused</c>, or <c>pending</c> for an intent recorded before an action runs.</summary>
    public required string Outcome { get; init; }

    public string? ErrorType { get; init; }

    /// <summary>Hex SHA-256 of the serialized result, and its size in bytes.</summary>
    public string? ResultHash { get; init; }

    public long? ResultSize { get; init; }

    public double? LatencyMs { get; init; }

    public string? ConfirmationId { get; init; }

    public string? Silo { get; init; }

    /// <summary>Free-form, already-safe detail for operator events (who purged what, and so on).</summary>
    public string? Detail { get; init; }
}

/// <summary>An entry as stored: with its per-tenant sequence and its place in the tenant's hash chain.</summary>
public sealed record AuditRecord(AuditEntry Entry, long Sequence, string PreviousHash, string Hash);
