using ControlPlane.Guard.Authentication;
using ControlPlane.GuardState;
using ControlPlane.Operators;
using ControlPlane.Tenants;
using ControlPlane.Tokens;

namespace ControlPlane.Host.Operations;

/// <summary>A freshly minted token: the only time its secret exists outside the agent's hands.</summary>
internal sealed record MintedToken(AgentTokenInfo Info, string Bearer);

/// <summary>Mints, lists and revokes agent tokens for a tenant.</summary>
internal sealed class TokenService(IGrainFactory grains, TenantService tenants, TokenIds ids, OperatorAuditor auditor, [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time)
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromDays(30);
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(366);

    public async Task<MintedToken> MintAsync(OperatorAccount by, string tenantId, string? agentId, string? userId, IReadOnlyList<string>? scopes, long? expiresInSeconds)
    {
        by.RequireRole(OperatorRoles.Admin);
        await tenants.GetVisibleAsync(by, tenantId);

        var check = new RequestValidator()
            .Check(Identifiers.IsValidReference(agentId), "agentId", "Name the agent: 1-128 letters, digits, '-', '_', '.', ':' or '/'.")
            .Check(userId is null || Identifiers.IsValidReference(userId), "userId", "User ids use 1-128 letters, digits, '-', '_', '.', ':' or '/'.")
            .Check(scopes is not null, "scopes", "List the scopes, e.g. [\"server:support-desk:read\"]; a token without scopes can call nothing.")
            .Check(expiresInSeconds is null || (expiresInSeconds >= 60 && expiresInSeconds <= (long)MaxLifetime.TotalSeconds),
                "expiresInSeconds", $"Between 60 and {(long)MaxLifetime.TotalSeconds} seconds.");
        foreach (var scope in scopes ?? [])
        {
            check.Check(Scopes.IsValid(scope), "scopes", $"'{scope}' is not a scope. Use server:<serverId>:read, server:<serverId>:write or tool:<serverId>/<toolName>.");
        }

        check.ThrowIfInvalid();

        var now = time.GetUtcNow();
        var (id, bearer, hash) = SecretTokens.Create(SecretTokens.AgentPrefix, ids.NewId());
        var token = new AgentToken(id, tenantId, agentId!, userId, [.. scopes!.Distinct(StringComparer.Ordinal)], hash, now,
            now + (expiresInSeconds is { } s ? TimeSpan.FromSeconds(s) : DefaultLifetime), RevokedAt: null, by.Id);

        // Permissive: a new credential exists only once its record is durable. The record names the token by id; the
        // bearer never reaches the audit.
        var action = new OperatorAction("token.mint", tenantId, OperatorAction.Targets(
            ("tokenId", id), ("agentId", token.AgentId), ("userId", token.UserId), ("scopes", string.Join(' ', token.Scopes)),
            ("expiresAt", token.ExpiresAt?.ToString("O", System.Globalization.CultureInfo.InvariantCulture))), Reason: null)
        {
            TokenId = id,
            AgentId = token.AgentId,
        };
        return await auditor.PermissiveAsync(by, action, async () =>
        {
            await grains.GetGrain<IAgentTokenGrain>(id).CreateAsync(token);
            try
            {
                await grains.GetGrain<ITenantGrain>(tenantId).AddTokenAsync(token.ToInfo());
            }
            catch
            {
                // A token the tenant cannot list could not be revoked through the API: take it back.
                await grains.GetGrain<IAgentTokenGrain>(id).RevokeAsync(now);
                throw;
            }

            return new MintedToken(token.ToInfo(), bearer);
        });
    }

    public async Task<IReadOnlyList<AgentTokenInfo>> ListAsync(OperatorAccount by, string tenantId)
    {
        by.RequireRole(OperatorRoles.Viewer);
        await tenants.GetVisibleAsync(by, tenantId);
        return await grains.GetGrain<ITenantGrain>(tenantId).ListTokensAsync();
    }

    public async Task<AgentTokenInfo> RevokeAsync(OperatorAccount by, string tenantId, string tokenId)
    {
        by.RequireRole(OperatorRoles.Admin);
        await tenants.GetVisibleAsync(by, tenantId);
        if (!Identifiers.IsValidReference(tokenId)) throw new NotFoundException($"No token '{tokenId}' in tenant '{tenantId}'.");

        var tokenGrain = grains.GetGrain<IAgentTokenGrain>(tokenId);
        var token = await SiloFailover.RideOutAsync(tokenGrain.GetAsync);
        if (token is null || token.TenantId != tenantId) throw new NotFoundException($"No token '{tokenId}' in tenant '{tenantId}'.");

        var now = time.GetUtcNow();
        // Protective: revoked even while the audit store is down; the record follows.
        return await auditor.ProtectiveAsync(by, async () =>
        {
            // Guard state first: once it has the revocation, every silo refuses the token, whatever else fails.
            await grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton).RevokeTokenAsync(tokenId, token.ExpiresAt);
            var revoked = await tokenGrain.RevokeAsync(now) ?? token;
            await grains.GetGrain<ITenantGrain>(tenantId).MarkTokenRevokedAsync(tokenId, revoked.RevokedAt ?? now);
            return revoked.ToInfo();
        }, info => new OperatorAction("token.revoke", tenantId, OperatorAction.Targets(("tokenId", tokenId), ("agentId", info.AgentId)), Reason: null)
        {
            TokenId = tokenId,
            AgentId = info.AgentId,
        });
    }
}
