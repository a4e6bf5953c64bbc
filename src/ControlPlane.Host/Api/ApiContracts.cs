using ControlPlane.Host.Operations;
using ControlPlane.KillSwitches;
using ControlPlane.Tenants;
using ControlPlane.Tokens;

namespace ControlPlane.Host.Api;

internal sealed record SetKillSwitchRequest(
    string? Scope, string? TenantId, string? AgentId, string? UserId, string? SessionId, string? ServerId, string? ToolName, string? Reason);

internal sealed record ReasonRequest(string? Reason);

internal sealed record KillSwitchResponse(
    string Id, string Scope, string? TenantId, string? AgentId, string? UserId, string? SessionId, string? ServerId, string? ToolName,
    string Reason, string SetBy, DateTimeOffset SetAt)
{
    public static KillSwitchResponse From(KillSwitch s) => new(
        s.Id, s.Target.Scope.ToWireName(), s.Target.TenantId, s.Target.AgentId, s.Target.UserId, s.Target.SessionId,
        s.Target.ServerId, s.Target.ToolName, s.Reason, s.SetBy, s.SetAt);
}

internal sealed record CreateTenantRequest(string? Id, string? Name);

internal sealed record TenantResponse(string Id, string Name, DateTimeOffset CreatedAt)
{
    public static TenantResponse From(TenantInfo t) => new(t.Id, t.Name, t.CreatedAt);
}

internal sealed record MintTokenRequest(string? AgentId, string? UserId, IReadOnlyList<string>? Scopes, long? ExpiresInSeconds);

internal sealed record MintTokenResponse(
    string Id, string Token, string TenantId, string AgentId, string? UserId, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt);

internal sealed record TokenResponse(
    string Id, string TenantId, string AgentId, string? UserId, IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, string CreatedBy, string Status)
{
    public static TokenResponse From(AgentTokenInfo t, DateTimeOffset now) => new(
        t.Id, t.TenantId, t.AgentId, t.UserId, t.Scopes, t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.CreatedBy,
        t.RevokedAt is not null ? "revoked" : t.ExpiresAt is { } at && at <= now ? "expired" : "active");
}

internal sealed record ItemsResponse<T>(IReadOnlyList<T> Items);

internal sealed record ServerModeRequest(string? Mode, string? Reason);

internal sealed record ClassificationRequest(string? Classification, string? Reason, string? TenantId);

internal sealed record SchemaOverrideRequest(System.Text.Json.JsonElement? Schema, string? Reason, string? TenantId);

internal sealed record RetentionRequest(int? Days);

/// <summary>An approval for operators. <c>argumentsExact</c> says whether <c>arguments</c> are the exact ones the token binds (an approver's view) or redacted.</summary>
internal sealed record ApprovalResponse(
    string Id, string TenantId, string AgentId, string? UserId, string? SessionId, string Server, string Tool, string ToolKey,
    System.Text.Json.JsonElement Arguments, bool ArgumentsExact, string Status, DateTimeOffset RequestedAt, DateTimeOffset ExpiresAt,
    string? DecidedBy, DateTimeOffset? DecidedAt, string? Reason, DateTimeOffset? TokenExpiresAt, DateTimeOffset? ConsumedAt)
{
    public static ApprovalResponse From(ControlPlane.Approvals.ApprovalView v) => From(new ApprovalEntry(v, v.Request.Arguments, Exact: false));

    public static ApprovalResponse From(ApprovalEntry e)
    {
        var v = e.View;
        return new(
            v.Request.Id, v.Request.TenantId, v.Request.AgentId, v.Request.UserId, v.Request.SessionId, v.Request.ServerId, v.Request.ToolName,
            v.Request.ServerId + "/" + v.Request.ToolName, System.Text.Json.JsonDocument.Parse(e.Arguments).RootElement.Clone(), e.Exact,
            v.Status.ToString().ToLowerInvariant(), v.Request.RequestedAt, v.Request.ExpiresAt, v.DecidedBy, v.DecidedAt, v.Reason,
            v.TokenExpiresAt, v.ConsumedAt);
    }
}

internal sealed record RateLimitRequest(string? Scope, string? AgentId, string? UserId, string? ServerId, string? ToolName, double? Capacity, double? RefillPerSecond);

internal sealed record ProjectionRequest(string[]? Fields, int? MaxItems, int? MaxBytes, bool? RedactPii, bool? Remove, string? Reason);

internal sealed record RegisterUpstreamRequest(
    string? Id, string? TenantId, string? Transport, string? Command, string[]? Args, Dictionary<string, string>? Env, string? Url, Dictionary<string, string>? Headers,
    bool? TrustAnnotations);

/// <summary>Trust in one registration's own tool annotations: <c>tenantId</c> names a tenant's own registration, else the global (or only) one.</summary>
internal sealed record TrustAnnotationsRequest(bool? Trust, string? Reason, string? TenantId);
