using ControlPlane.Operators;

namespace ControlPlane.Host.Operations;

internal static class OperatorAccess
{
    public static void RequireRole(this OperatorAccount account, string role)
    {
        if (!account.HasRole(role)) throw new ForbiddenException($"This needs the '{role}' role; operator '{account.Id}' has {string.Join(", ", account.Roles)}.");
    }

    public static void RequireTenant(this OperatorAccount account, string tenantId)
    {
        if (!account.CanSeeTenant(tenantId)) throw new ForbiddenException($"Operator '{account.Id}' may not act on tenant '{tenantId}'.");
    }

    public static void RequireAllTenants(this OperatorAccount account, string what)
    {
        if (!account.SeesAllTenants) throw new ForbiddenException($"{what} affects every tenant; operator '{account.Id}' is limited to {string.Join(", ", account.Tenants)}.");
    }
}
