using ControlPlane.Operators;
using ControlPlane.Tenants;

namespace ControlPlane.Host.Operations;

internal sealed class TenantService(IGrainFactory grains, TimeProvider time, OperatorAuditor auditor)
{
    private ITenantDirectoryGrain Directory => grains.GetGrain<ITenantDirectoryGrain>(ITenantDirectoryGrain.Singleton);

    public async Task<(TenantInfo Tenant, bool Created)> CreateAsync(OperatorAccount by, string? id, string? name)
    {
        by.RequireRole(OperatorRoles.Admin);
        by.RequireAllTenants("Creating a tenant");
        new RequestValidator()
            .Check(Identifiers.IsValidTenantId(id), "id", "Tenant ids match ^[a-z0-9][a-z0-9-]{0,62}$.")
            .Check(name is null || name.Length <= 200, "name", "Keep the name under 200 characters.")
            .ThrowIfInvalid();

        // Creating an existing tenant changes nothing, so it leaves no record. A new tenant's chain starts with its creation.
        if (await Directory.GetAsync(id!) is { } existing) return (existing, false);
        return await auditor.PermissiveAsync(by, new OperatorAction("tenant.create", id, OperatorAction.Targets(("tenantId", id), ("name", name ?? id)), Reason: null),
            () => Directory.CreateAsync(id!, name ?? id!, time.GetUtcNow()));
    }

    public async Task<IReadOnlyList<TenantInfo>> ListAsync(OperatorAccount by)
    {
        by.RequireRole(OperatorRoles.Viewer);
        var all = await Directory.ListAsync();
        return [.. all.Where(t => by.CanSeeTenant(t.Id))];
    }

    /// <summary>Sets how many days of audit records the tenant keeps (null: the deployment default).</summary>
    public async Task SetAuditRetentionAsync(OperatorAccount by, string tenantId, int? days)
    {
        by.RequireRole(OperatorRoles.Admin);
        await GetVisibleAsync(by, tenantId);
        new RequestValidator().Check(days is null or (>= 1 and <= 3650), "days", "Between 1 and 3650 days, or null for the default.").ThrowIfInvalid();
        // Permissive: a shorter retention deletes audit records, so the change itself must be on record first.
        await auditor.PermissiveAsync(by, new OperatorAction("audit-retention.set", tenantId,
                OperatorAction.Targets(("tenantId", tenantId), ("days", days?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default")), Reason: null),
            async () =>
            {
                await grains.GetGrain<ITenantGrain>(tenantId).SetAuditRetentionAsync(days);
                return true;
            });
    }

    /// <summary>The tenant, if it exists and this operator may see it; otherwise 404 or 403.</summary>
    public async Task<TenantInfo> GetVisibleAsync(OperatorAccount by, string tenantId)
    {
        by.RequireTenant(tenantId);
        return await SiloFailover.RideOutAsync(() => Directory.GetAsync(tenantId)) ?? throw new NotFoundException($"No tenant has id '{tenantId}'.");
    }
}
