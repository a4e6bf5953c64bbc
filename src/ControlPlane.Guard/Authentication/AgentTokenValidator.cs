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

        // The cached record may know more than the caller's copy (a session holds the record it opened with).
        if (_records.TryGetValue(token.Id, out var cached) && cached.Token.ExpiredAt is { } seenAt)
        {
            if (_unrecorded.ContainsKey(token.Id)) RecordInGrain(token.Id, seenAt);
            return TokenStatus.Expired;
        }

        var now = time.GetUtcNow();
        if (!token.IsExpired(now)) return TokenStatus.Valid;

        if (token.ExpiredAt is null) MarkExpired(token, now);
        return TokenStatus.Expired;
    }

    /// <summary>
    /// Once expired, always expired: the first expiry this silo sees is marked in this silo's cache before the call
    /// returns, and recorded in the token's grain (persisted, so every silo that loads the token later knows), so a
    /// clock stepped back past the expiry does not revive the token. The grain's record is off the call path; until
    /// it lands, other silos go by their own clocks, and a failed record is retried on the token's next call.
    /// </summary>
    private void MarkExpired(AgentToken token, DateTimeOffset observedAt)
    {
        _records.AddOrUpdate(
            token.Id,
            static (_, seen) => new GrantedToken(seen.Token with { ExpiredAt = seen.At }, ScopeGrant.Parse(seen.Token.Scopes)),
            static (_, cached, seen) => cached.Token.ExpiredAt is not null ? cached : cached with { Token = cached.Token with { ExpiredAt = seen.At } },
            (Token: token, At: observedAt));
        _unrecorded[token.Id] = 0;
        RecordInGrain(token.Id, observedAt);
    }

    private void RecordInGrain(string tokenId, DateTimeOffset observedAt)
    {
        if (!_recording.TryAdd(tokenId, 0)) return;
        _ = Task.Run(async () =>
        {
            try
            {
                // The grain's answer wins: recorded, or refused because this silo's clock is too far ahead of the
                // grain's (then this silo's mark goes too, and its clock decides again).
                var recorded = await grains.GetGrain<IAgentTokenGrain>(tokenId).MarkExpiredAsync(observedAt);
                if (recorded is not null) _records[tokenId] = new GrantedToken(recorded, ScopeGrant.Parse(recorded.Scopes));
                _unrecorded.TryRemove(tokenId, out _);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The grain or its storage is unavailable: this silo keeps its mark and the next call tries again.
            }
            finally
            {
                _recording.TryRemove(tokenId, out _);
            }
        });
    }

    private readonly ConcurrentDictionary<string, byte> _recording = new(StringComparer.Ordinal);

    private readonly ConcurrentDictionary<string, byte> _unrecorded = new(StringComparer.Ordinal);
}
