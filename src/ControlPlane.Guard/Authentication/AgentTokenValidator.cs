using System.Collections.Concurrent;
using ControlPlane.Guard.State;
using ControlPlane.Tokens;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Guard.Authentication;

/// <summary>A token record with its scopes parsed, cached together on the silo.</summary>
public sealed record GrantedToken(AgentToken Token, ScopeGrant Grant);

public enum TokenStatus
{
    Valid,
    Invalid,
    Expired,
    Revoked,
}

/// <summary>
/// Checks agent tokens. Records are cached on the silo once read (they only ever change by revocation,
/// which reaches every silo through the guard state), so the hot path costs a hash and a few reads.
/// </summary>
public sealed class AgentTokenValidator(IGrainFactory grains, GuardStateCache guardState, TokenIds ids, [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time)
{
    private readonly ConcurrentDictionary<string, GrantedToken> _records = new(StringComparer.Ordinal);

    public async ValueTask<(TokenStatus Status, GrantedToken? Token)> ValidateAsync(string? bearer, CancellationToken cancellationToken)
    {
        if (!SecretTokens.TryParse(bearer, SecretTokens.AgentPrefix, out var id, out var secret)) return (TokenStatus.Invalid, null);

        if (!_records.TryGetValue(id, out var granted))
        {
            // Made-up ids stop here, before they can activate a grain.
            var kind = ids.Classify(id);
            if (kind == TokenIdKind.Forged || (kind == TokenIdKind.Untagged && !ids.TryAffordUntaggedLookup())) return (TokenStatus.Invalid, null);

            var token = await grains.GetGrain<IAgentTokenGrain>(id).GetAsync().WaitAsync(cancellationToken);
            if (token is null) return (TokenStatus.Invalid, null);
            granted = _records.GetOrAdd(id, new GrantedToken(token, ScopeGrant.Parse(token.Scopes)));
        }

        if (!SecretTokens.Matches(secret, granted.Token.SecretHash)) return (TokenStatus.Invalid, null);
        return (StatusOf(granted.Token), granted);
    }

    /// <summary>The token's standing right now: revocation first, then expiry.</summary>
    public TokenStatus StatusOf(AgentToken token)
    {
        if (token.RevokedAt is not null || guardState.IsRevoked(token.Id)) return TokenStatus.Revoked;
        if (token.IsExpired(time.GetUtcNow())) return TokenStatus.Expired;
        return TokenStatus.Valid;
    }
}
