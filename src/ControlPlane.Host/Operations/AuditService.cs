using System.Globalization;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Operators;

namespace ControlPlane.Host.Operations;

/// <summary>Reads the audit trail for auditors: only the tenants an operator may see, whatever it asks for.</summary>
internal sealed class AuditService(IAuditStore store, TenantService tenants)
{
    public async Task<AuditQuery> BuildQueryAsync(OperatorAccount by, IQueryCollection query)
    {
        by.RequireRole(OperatorRoles.Auditor);
        var check = new RequestValidator();
        string? Text(string name)
        {
            var value = query[name].ToString();
            if (value.Length > 200) check.Add(name, "Too long.");
            return string.IsNullOrWhiteSpace(value) ? null : value.Trim();
        }

        DateTimeOffset? Time(string name)
        {
            var value = Text(name);
            if (value is null) return null;
            if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)) return at;
            check.Add(name, "Use an ISO 8601 time such as 2026-11-25T12:00:00Z.");
            return null;
        }

        var tenantId = Text("tenantId");
        var kind = Text("kind");
        check.Check(kind is null || (kind.Length <= 100 && (kind.IndexOf('*') == -1 || kind.IndexOf('*') == kind.Length - 1)), "kind",
            "An exact kind such as operator/token.mint, or a prefix ending in * such as operator/*.");
        var decision = Text("decision");
        var outcome = Text("outcome");
        var limitText = Text("limit");
        var limit = 100;
        check.Check(decision is null or "allowed" or "refused", "decision", "Use 'allowed' or 'refused'.");
        check.Check(outcome is null or "success" or "error" or "refused" or "pending", "outcome", "Use 'success', 'error', 'refused' or 'pending'.");
        check.Check(limitText is null || (int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 1000), "limit", "Between 1 and 1000.");
        var from = Time("from");
        var to = Time("to");
        var cursor = Text("cursor");
        check.ThrowIfInvalid();

        IReadOnlyList<string>? tenantIds = null;
        if (tenantId is not null)
        {
            await RequireVisibleChainAsync(by, tenantId);
            tenantIds = [tenantId];
        }
        else if (!by.SeesAllTenants)
        {
            // Never the cluster chain: it is not one of the operator's tenants.
            tenantIds = by.Tenants;
        }

        return new AuditQuery
        {
            TenantIds = tenantIds,
            AgentId = Text("agentId"),
            UserId = Text("userId"),
            SessionId = Text("sessionId"),
            Tool = Text("tool"),
            Decision = decision,
            Outcome = outcome,
            Kind = kind,
            From = from,
            To = to,
            Cursor = cursor,
            Limit = limit,
            IncludeIntents = string.Equals(Text("includeIntents"), "true", StringComparison.OrdinalIgnoreCase),
        };
    }

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        try
        {
            return await store.QueryAsync(query, cancellationToken);
        }
        catch (ArgumentException) when (query.Cursor is not null)
        {
            throw InvalidRequestException.For("cursor", "Not a cursor this API returned; pass back a nextCursor.");
        }
    }

    public IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, CancellationToken cancellationToken) => store.ExportAsync(query, cancellationToken);

    public async Task<ChainVerification> VerifyAsync(OperatorAccount by, string? tenantId, CancellationToken cancellationToken)
    {
        by.RequireRole(OperatorRoles.Auditor);
        if (string.IsNullOrWhiteSpace(tenantId)) throw InvalidRequestException.For("tenantId", "Name the tenant whose chain to verify.");
        await RequireVisibleChainAsync(by, tenantId);
        return await store.VerifyAsync(tenantId, cancellationToken);
    }

    /// <summary>
    /// A tenant's chain, or the cluster chain of actions that reach every tenant: that one only for operators who see
    /// all tenants (a tenant-limited operator gets the same 403 as for any tenant not its own).
    /// </summary>
    private async Task RequireVisibleChainAsync(OperatorAccount by, string tenantId)
    {
        if (tenantId == AuditTenants.Cluster) by.RequireAllTenants("The cluster audit chain");
        else await tenants.GetVisibleAsync(by, tenantId);
    }
}
