namespace ControlPlane.Tokens;

/// <summary>
/// An agent token as stored: never the secret, only its SHA-256. The secret is high-entropy random,
/// so a fast unsalted hash is the right tool (a password hash would only slow every call).
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.AgentToken")]
public sealed record AgentToken(
    [property: Id(0)] string Id,
    [property: Id(1)] string TenantId,
    [property: Id(2)] string AgentId,
    [property: Id(3)] string? UserId,
    [property: Id(4)] string[] Scopes,
    [property: Id(5)] byte[] SecretHash,
    [property: Id(6)] DateTimeOffset CreatedAt,
    [property: Id(7)] DateTimeOffset? ExpiresAt,
    [property: Id(8)] DateTimeOffset? RevokedAt,
    [property: Id(9)] string CreatedBy,
    [property: Id(10)] DateTimeOffset? ExpiredAt = null)
{
    /// <summary>
    /// Expired once the clock reaches <see cref="ExpiresAt"/>, and for good once a silo has recorded that
    /// (<see cref="ExpiredAt"/>): a clock stepped back later does not revive the token.
    /// </summary>
    public bool IsExpired(DateTimeOffset now) => ExpiredAt is not null || (ExpiresAt is { } at && now >= at);

    public AgentTokenInfo ToInfo() => new(Id, TenantId, AgentId, UserId, Scopes, CreatedAt, ExpiresAt, RevokedAt, CreatedBy);
}

/// <summary>Token metadata safe to list: no hash, no secret.</summary>
[GenerateSerializer, Immutable, Alias("cp.AgentTokenInfo")]
public sealed record AgentTokenInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] string TenantId,
    [property: Id(2)] string AgentId,
    [property: Id(3)] string? UserId,
    [property: Id(4)] string[] Scopes,
    [property: Id(5)] DateTimeOffset CreatedAt,
    [property: Id(6)] DateTimeOffset? ExpiresAt,
    [property: Id(7)] DateTimeOffset? RevokedAt,
    [property: Id(8)] string CreatedBy);

/// <summary>One token's durable record, keyed by token id (the public half of the bearer string).</summary>
[Alias("cp.IAgentTokenGrain")]
public interface IAgentTokenGrain : IGrainWithStringKey
{
    /// <summary>Stores a new token. Fails if the id is already in use.</summary>
    [Alias("Create")]
    Task CreateAsync(AgentToken token);

    [Alias("Get"), AlwaysInterleave]
    Task<AgentToken?> GetAsync();

    /// <summary>Marks the token revoked. Returns the updated record, or null if unknown.</summary>
    [Alias("Revoke")]
    Task<AgentToken?> RevokeAsync(DateTimeOffset at);

    /// <summary>
    /// Records that a silo saw the token expired at <paramref name="observedAt"/>, so it stays expired whatever
    /// clocks do later. Ignored while this grain's own clock is more than <c>MaxClockSkew</c> short of the
    /// expiry (one silo with a clock far ahead must not end tokens early for everyone). Returns the record.
    /// </summary>
    [Alias("MarkExpired")]
    Task<AgentToken?> MarkExpiredAsync(DateTimeOffset observedAt);
}
