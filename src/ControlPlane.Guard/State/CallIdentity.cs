namespace ControlPlane.Guard.State;

/// <summary>Who is calling what: everything a kill switch can name.</summary>
public readonly record struct CallIdentity(
    string TenantId,
    string AgentId,
    string? UserId,
    string? SessionId,
    string ServerId,
    string ToolName);
