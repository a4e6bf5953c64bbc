using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Operators;
using ControlPlane.Sessions;

namespace ControlPlane.Host.Operations;

/// <summary>Sets, lists and clears kill switches on behalf of an operator. Used by the REST API and the console.</summary>
internal sealed class KillSwitchService(IGrainFactory grains, OperatorAuditor auditor)
{
    private IGuardStateGrain Owner => grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

    public async Task<KillSwitchChange> SetAsync(OperatorAccount by, KillTarget target, string? reason)
    {
        by.RequireRole(OperatorRoles.Operator);

        var check = new RequestValidator();
        foreach (var (field, problem) in GuardStateLimits.TargetProblems(target)) check.Add(field, problem);
        foreach (var problem in target.Validate()) check.Add("scope", problem);
        check.Check(!string.IsNullOrWhiteSpace(reason), "reason", "A reason is required: say why, for the next person on call.");
        check.Check(reason is null || reason.Trim().Length <= GuardStateLimits.MaxReasonLength, "reason", $"Keep the reason to {GuardStateLimits.MaxReasonLength} characters.");
        check.ThrowIfInvalid();

        var tenantId = await AuthorizeTargetAsync(by, target);
        // A session switch is counted against its session's tenant, not against the switches that reach every tenant.
        if (target.Scope == KillScope.Session && target.TenantId is null && tenantId is not null) target = target with { TenantId = tenantId };
        await RequireRoomAsync(target);
        // Protective: the switch is set even while the audit store is down; its record follows.
        return await auditor.ProtectiveAsync(by, () => Owner.SetKillSwitchAsync(target, reason!.Trim(), by.Id),
            change => change.Created ? Describe("kill-switch.set", change.Switch, tenantId, change.Switch.Reason) : null);
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
            .Check(reason is null || reason.Trim().Length <= GuardStateLimits.MaxReasonLength, "reason", $"Keep the reason to {GuardStateLimits.MaxReasonLength} characters.")
            .ThrowIfInvalid();

        var active = (await Owner.GetSnapshotAsync()).KillSwitches.FirstOrDefault(s => s.Id == switchId)
            ?? throw new NotFoundException($"No active kill switch has id '{switchId}'.");
        var tenantId = await AuthorizeTargetAsync(by, active.Target);

        // Permissive: letting agents run again is recorded first, and refused if it cannot be.
        return await auditor.PermissiveAsync(by, Describe("kill-switch.clear", active, tenantId, reason!.Trim()), async () =>
            await Owner.ClearKillSwitchAsync(switchId, reason!.Trim(), by.Id)
            ?? throw new NotFoundException($"No active kill switch has id '{switchId}'."));
    }

    /// <summary>
    /// A new switch for a tenant that holds its bound already is refused here with what to clear, before the audit
    /// records anything; the owner grain checks again, authoritatively.
    /// </summary>
    private async Task RequireRoomAsync(KillTarget target)
    {
        var switches = (await Owner.GetSnapshotAsync()).KillSwitches;
        if (switches.Any(s => s.Target.Key == target.Key)) return;
        var held = switches.Count(s => s.Target.TenantId == target.TenantId);
        if (held < GuardStateLimits.MaxKillSwitchesPerTenant) return;
        var whose = target.TenantId is null ? "that reach every tenant" : $"for tenant '{target.TenantId}'";
        throw new ConflictException(
            $"There are already {held} active kill switches {whose}, the most the guard state keeps ({GuardStateLimits.MaxKillSwitchesPerTenant}); nothing was changed. " +
            "Clear those no longer needed (GET /api/v1/kill-switches), or set one wider switch (scope 'tenant') that covers them.");
    }

    private static OperatorAction Describe(string action, KillSwitch killSwitch, string? tenantId, string reason)
    {
        var t = killSwitch.Target;
        return new OperatorAction(action, tenantId, OperatorAction.Targets(
            ("switchId", killSwitch.Id), ("scope", t.Scope.ToWireName()), ("tenantId", t.TenantId), ("agentId", t.AgentId), ("userId", t.UserId),
            ("sessionId", t.SessionId), ("serverId", t.ServerId), ("toolName", t.ToolName)), reason)
        {
            Server = t.ServerId,
            Tool = t.ToolName,
            AgentId = t.AgentId,
            SessionId = t.SessionId,
        };
    }

    /// <summary>
    /// A tenant-limited operator may only touch switches confined to its tenants. Returns the tenant the switch is
    /// confined to (a session's own tenant for a session switch), or null when it reaches every tenant.
    /// </summary>
    private async Task<string?> AuthorizeTargetAsync(OperatorAccount by, KillTarget target)
    {
        var tenantId = target.TenantId;
        if (target.Scope == KillScope.Session)
        {
            var session = await grains.GetGrain<ISessionGrain>(target.SessionId!).GetAsync();
            if (session is null && !by.SeesAllTenants) throw new ForbiddenException($"Session '{target.SessionId}' is not known to belong to a tenant you may act on.");
            if (session is not null && tenantId is not null && tenantId != session.TenantId && !by.SeesAllTenants) throw new ForbiddenException("The session belongs to another tenant.");
            tenantId ??= session?.TenantId;
        }

        if (by.SeesAllTenants) return tenantId;
        if (tenantId is null) by.RequireAllTenants($"A {target.Scope.ToWireName()} kill switch without a tenantId");
        else by.RequireTenant(tenantId);
        return tenantId;
    }
}
