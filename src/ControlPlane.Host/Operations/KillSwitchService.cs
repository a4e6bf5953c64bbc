using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Operators;
using ControlPlane.Sessions;

namespace ControlPlane.Host.Operations;

/// <summary>Sets, lists and clears kill switches on behalf of an operator. Used by the REST API and the console.</summary>
internal sealed class KillSwitchService(IGrainFactory grains)
{
    private IGuardStateGrain Owner => grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

    public async Task<KillSwitchChange> SetAsync(OperatorAccount by, KillTarget target, string? reason)
    {
        by.RequireRole(OperatorRoles.Operator);

        var check = new RequestValidator();
        foreach (var problem in target.Validate()) check.Add("scope", problem);
        check.Check(!string.IsNullOrWhiteSpace(reason), "reason", "A reason is required: say why, for the next person on call.");
        check.Check(reason is null || reason.Length <= 500, "reason", "Keep the reason under 500 characters.");
        check.ThrowIfInvalid();

        await AuthorizeTargetAsync(by, target);
        return await Owner.SetKillSwitchAsync(target, reason!.Trim(), by.Id);
    }

    public async Task<IReadOnlyList<KillSwitch>> ListAsync(OperatorAccount by)
    {
        by.RequireRole(OperatorRoles.Viewer);
        var snapshot = await Owner.GetSnapshotAsync();
        return [.. snapshot.KillSwitches.Where(s => by.SeesAllTenants || (s.Target.TenantId is { } t && by.CanSeeTenant(t)))];
    }

    public async Task<KillSwitch> ClearAsync(OperatorAccount by, string switchId, string? reason)
    {
        by.RequireRole(OperatorRoles.Operator);
        new RequestValidator()
            .Check(!string.IsNullOrWhiteSpace(reason), "reason", "A reason is required to clear a switch.")
            .ThrowIfInvalid();

        var active = (await Owner.GetSnapshotAsync()).KillSwitches.FirstOrDefault(s => s.Id == switchId)
            ?? throw new NotFoundException($"No active kill switch has id '{switchId}'.");
        await AuthorizeTargetAsync(by, active.Target);

        return await Owner.ClearKillSwitchAsync(switchId, reason!.Trim(), by.Id)
            ?? throw new NotFoundException($"No active kill switch has id '{switchId}'.");
    }

    /// <summary>A tenant-limited operator may only touch switches confined to its tenants.</summary>
    private async Task AuthorizeTargetAsync(OperatorAccount by, KillTarget target)
    {
        if (by.SeesAllTenants) return;

        var tenantId = target.TenantId;
        if (target.Scope == KillScope.Session)
        {
            var session = await grains.GetGrain<ISessionGrain>(target.SessionId!).GetAsync();
            if (session is null) throw new ForbiddenException($"Session '{target.SessionId}' is not known to belong to a tenant you may act on.");
            if (tenantId is not null && tenantId != session.TenantId) throw new ForbiddenException("The session belongs to another tenant.");
            tenantId = session.TenantId;
        }

        if (tenantId is null) by.RequireAllTenants($"A {target.Scope.ToWireName()} kill switch without a tenantId");
        else by.RequireTenant(tenantId);
    }
}
