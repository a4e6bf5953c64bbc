namespace ControlPlane.Audit.Model;

/// <summary>Filters for reading the audit trail. All are optional and combine with AND; newest first.</summary>
public sealed record AuditQuery
{
    /// <summary>Limit to these tenants; null means every tenant (only for operators who see all).</summary>
    public IReadOnlyList<string>? TenantIds { get; init; }
    public string? AgentId { get; init; }
    public string? UserId { get; init; }
    public string? SessionId { get; init; }
    public string? Tool { get; init; }
    public string? Decision { get; init; }
    public string? Outcome { get; init; }

    /// <summary>An exact kind (<c>operator/token.mint</c>), or a prefix ending in <c>*</c> (<c>operator/*</c>).</summary>
    public string? Kind { get; init; }

    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }

    /// <summary>
    /// Intent records (kind <c>tools/call:intent</c>, outcome <c>pending</c>) are written before an action runs;
    /// the call's own record follows. Listings leave them out unless asked.
    /// </summary>
    public bool IncludeIntents { get; init; }

    /// <summary>Opaque cursor from a previous page: continue after it.</summary>
    public string? Cursor { get; init; }

    public int Limit { get; init; } = 100;
}

public sealed record AuditPage(IReadOnlyList<AuditRecord> Items, string? NextCursor);

/// <summary>The result of walking a tenant's chain: how many records were checked and the first one that does not fit.</summary>
public sealed record ChainVerification(bool Ok, long Checked, long? FirstBroken, string? Problem);
