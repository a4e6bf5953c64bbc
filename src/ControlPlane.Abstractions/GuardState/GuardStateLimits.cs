using ControlPlane.KillSwitches;

namespace ControlPlane.GuardState;

/// <summary>
/// Bounds on what reaches the guard state record, which one grain owns, every flip rewrites and every silo holds in
/// memory. The operator services check them first (400 naming the field, 409 for a full tenant) and the owner grain
/// checks them again, so no caller that skips the services can grow the record either. Each entry's size is bounded
/// by the field limits and each tenant's number of entries by the counts, so the record grows with the number of
/// tenants, not with how often or how verbosely an operator acts.
/// </summary>
public static class GuardStateLimits
{
    /// <summary>A reason, for a switch, a clear or a policy change.</summary>
    public const int MaxReasonLength = 500;

    /// <summary>Who acted (an operator id).</summary>
    public const int MaxActorLength = 128;

    /// <summary>A tenant, server, tool, agent or user id (<see cref="Identifiers.IsValidReference"/> allows 128).</summary>
    public const int MaxIdLength = 128;

    /// <summary>An operator's schema override, as JSON text.</summary>
    public const int MaxSchemaLength = 16 * 1024;

    /// <summary>A projection's field list, and the length of each pointer in it.</summary>
    public const int MaxProjectionFields = 64;

    public const int MaxPointerLength = 256;

    /// <summary>Active kill switches confined to one tenant (and, separately, those that reach every tenant).</summary>
    public const int MaxKillSwitchesPerTenant = 100;

    /// <summary>Servers switched to read-write for one tenant.</summary>
    public const int MaxServerModesPerTenant = 100;

    /// <summary>Classification overrides for one tenant (and, separately, for every tenant).</summary>
    public const int MaxClassificationOverridesPerTenant = 100;

    /// <summary>Schema overrides for one tenant (and, separately, for every tenant); each up to <see cref="MaxSchemaLength"/>.</summary>
    public const int MaxSchemaOverridesPerTenant = 20;

    /// <summary>Rate limits for one tenant.</summary>
    public const int MaxRateLimitsPerTenant = 100;

    /// <summary>Result projections (cluster-wide only).</summary>
    public const int MaxProjections = 200;

    /// <summary>
    /// Flips and policy changes kept, each, in the recent history the console shows. The audit trail keeps every
    /// operator action; this is a window, not the record.
    /// </summary>
    public const int HistoryKept = 100;

    /// <summary>The problem with a required free-text field, or null when it is fine.</summary>
    public static string? ReasonProblem(string? reason) =>
        string.IsNullOrWhiteSpace(reason) ? "A reason is required: say why, for the audit and the next person on call."
        : reason.Length > MaxReasonLength ? $"Keep the reason to {MaxReasonLength} characters (this one has {reason.Length})."
        : null;

    /// <summary>The problem with an id field, or null when it is fine (null ids are the caller's to forbid or allow).</summary>
    public static string? IdProblem(string? id, int max = MaxIdLength) =>
        id is null ? null
        : string.IsNullOrWhiteSpace(id) ? "Must not be blank."
        : id.Length > max ? $"At most {max} characters (this one has {id.Length})."
        : null;

    /// <summary>The problems with a kill switch target's ids, by field name.</summary>
    public static IEnumerable<(string Field, string Problem)> TargetProblems(KillTarget target)
    {
        foreach (var (value, name, max) in new[]
        {
            (target.TenantId, "tenantId", MaxIdLength), (target.AgentId, "agentId", MaxIdLength), (target.UserId, "userId", MaxIdLength),
            (target.SessionId, "sessionId", 256), (target.ServerId, "serverId", MaxIdLength), (target.ToolName, "toolName", MaxIdLength),
        })
        {
            if (IdProblem(value, max) is { } problem) yield return (name, problem);
        }
    }
}
