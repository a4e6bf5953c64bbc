using ControlPlane.KillSwitches;

namespace ControlPlane.Host.OperatorConsole.Components.Shared;

internal static class KillSwitchText
{
    /// <summary>What a switch covers, in words a person reads at a glance.</summary>
    public static string Target(KillTarget t) => t.Scope switch
    {
        KillScope.Global => "every tool call, everywhere",
        KillScope.Server => $"server {t.ServerId}" + InTenant(t),
        KillScope.Tool => $"tool {t.ServerId}/{t.ToolName}" + InTenant(t),
        KillScope.Tenant => $"tenant {t.TenantId}",
        KillScope.Agent => $"agent {t.AgentId} in {t.TenantId}",
        KillScope.User => $"user {t.UserId} in {t.TenantId}",
        KillScope.Session => $"session {t.SessionId}" + InTenant(t),
        _ => t.Key,
    };

    private static string InTenant(KillTarget t) => t.TenantId is null ? "" : $" in {t.TenantId}";
}
