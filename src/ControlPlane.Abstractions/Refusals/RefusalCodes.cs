namespace ControlPlane.Refusals;

/// <summary>
/// The catalog of refusal codes an agent can receive in a refused tools/call. The wire names are part
/// of the outward contract; the README documents what each means and what to do next.
/// </summary>
public static class RefusalCodes
{
    /// <summary>The token expired or was revoked while the session was open.</summary>
    public const string Unauthenticated = "UNAUTHENTICATED";

    /// <summary>A kill switch covers this call.</summary>
    public const string Killed = "KILLED";

    /// <summary>The token's scopes do not allow this tool.</summary>
    public const string ForbiddenScope = "FORBIDDEN_SCOPE";

    /// <summary>An action tool on a server that is read-only for this tenant.</summary>
    public const string ReadOnly = "READ_ONLY";

    /// <summary>The arguments break the tool's schema.</summary>
    public const string InvalidArguments = "INVALID_ARGUMENTS";

    /// <summary>An action tool called without a valid confirmation token.</summary>
    public const string RequiresConfirmation = "REQUIRES_CONFIRMATION";

    /// <summary>A token bucket is empty.</summary>
    public const string RateLimited = "RATE_LIMITED";

    /// <summary>The downstream tool server is unhealthy, timed out or crashed.</summary>
    public const string UpstreamUnavailable = "UPSTREAM_UNAVAILABLE";

    /// <summary>The audit intent could not be made durable.</summary>
    public const string AuditUnavailable = "AUDIT_UNAVAILABLE";

    /// <summary>This silo cannot confirm that its guard state is fresh.</summary>
    public const string GuardUnavailable = "GUARD_UNAVAILABLE";

    public static IReadOnlyList<string> All { get; } =
    [
        Unauthenticated, Killed, ForbiddenScope, ReadOnly, InvalidArguments,
        RequiresConfirmation, RateLimited, UpstreamUnavailable, AuditUnavailable, GuardUnavailable,
    ];
}
