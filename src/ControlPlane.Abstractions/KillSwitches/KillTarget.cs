namespace ControlPlane.KillSwitches;

/// <summary>
/// What a kill switch covers. Each scope names its target with exactly the ids it needs;
/// <see cref="Key"/> is the canonical form the guard looks up on every call.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.KillTarget")]
public sealed record KillTarget(
    [property: Id(0)] KillScope Scope,
    [property: Id(1)] string? TenantId = null,
    [property: Id(2)] string? AgentId = null,
    [property: Id(3)] string? UserId = null,
    [property: Id(4)] string? SessionId = null,
    [property: Id(5)] string? ServerId = null,
    [property: Id(6)] string? ToolName = null)
{
    public static KillTarget Global { get; } = new(KillScope.Global);

    /// <summary>The lookup key. Ids cannot contain '|' (validated), so keys never collide across scopes.</summary>
    public string Key => Scope switch
    {
        KillScope.Global => "global",
        KillScope.Server => TenantId is null ? $"server|{ServerId}" : $"server|{ServerId}|{TenantId}",
        KillScope.Tool => TenantId is null ? $"tool|{ServerId}|{ToolName}" : $"tool|{ServerId}|{ToolName}|{TenantId}",
        KillScope.Tenant => $"tenant|{TenantId}",
        KillScope.Agent => $"agent|{TenantId}|{AgentId}",
        KillScope.User => $"user|{TenantId}|{UserId}",
        KillScope.Session => $"session|{SessionId}",
        _ => throw new InvalidOperationException($"Unknown kill scope {Scope}."),
    };

    /// <summary>Checks that the target names exactly what its scope needs; returns the problems, empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        void Need(string? value, string name)
        {
            if (string.IsNullOrWhiteSpace(value)) errors.Add($"scope '{Scope.ToWireName()}' needs {name}");
        }
        void Forbid(string? value, string name)
        {
            if (value is not null) errors.Add($"scope '{Scope.ToWireName()}' does not take {name}");
        }

        switch (Scope)
        {
            case KillScope.Global:
                Forbid(TenantId, "tenantId"); Forbid(AgentId, "agentId"); Forbid(UserId, "userId");
                Forbid(SessionId, "sessionId"); Forbid(ServerId, "serverId"); Forbid(ToolName, "toolName");
                break;
            case KillScope.Server:
                Need(ServerId, "serverId");
                Forbid(AgentId, "agentId"); Forbid(UserId, "userId"); Forbid(SessionId, "sessionId"); Forbid(ToolName, "toolName");
                break;
            case KillScope.Tool:
                Need(ServerId, "serverId"); Need(ToolName, "toolName");
                Forbid(AgentId, "agentId"); Forbid(UserId, "userId"); Forbid(SessionId, "sessionId");
                break;
            case KillScope.Tenant:
                Need(TenantId, "tenantId");
                Forbid(AgentId, "agentId"); Forbid(UserId, "userId"); Forbid(SessionId, "sessionId"); Forbid(ServerId, "serverId"); Forbid(ToolName, "toolName");
                break;
            case KillScope.Agent:
                Need(TenantId, "tenantId"); Need(AgentId, "agentId");
                Forbid(UserId, "userId"); Forbid(SessionId, "sessionId"); Forbid(ServerId, "serverId"); Forbid(ToolName, "toolName");
                break;
            case KillScope.User:
                Need(TenantId, "tenantId"); Need(UserId, "userId");
                Forbid(AgentId, "agentId"); Forbid(SessionId, "sessionId"); Forbid(ServerId, "serverId"); Forbid(ToolName, "toolName");
                break;
            case KillScope.Session:
                Need(SessionId, "sessionId");
                Forbid(AgentId, "agentId"); Forbid(UserId, "userId"); Forbid(ServerId, "serverId"); Forbid(ToolName, "toolName");
                break;
            default:
                errors.Add("unknown scope");
                break;
        }

        if (SessionId is not null && !Identifiers.IsValidSessionId(SessionId))
        {
            errors.Add("sessionId must be 1-256 visible ASCII characters other than '|'");
        }

        foreach (var (value, name) in new[] { (TenantId, "tenantId"), (AgentId, "agentId"), (UserId, "userId"), (ServerId, "serverId"), (ToolName, "toolName") })
        {
            if (value is not null && !Identifiers.IsValidReference(value))
            {
                errors.Add($"{name} must be 1-128 characters of letters, digits, '-', '_', '.', ':' or '/'");
            }
        }

        return errors;
    }
}
