using System.Security.Claims;
using ControlPlane.Tokens;

namespace ControlPlane.Guard.Authentication;

/// <summary>The authenticated agent behind an MCP request, with its token record at hand for the guard.</summary>
public sealed class AgentIdentity : ClaimsIdentity
{
    public const string TenantClaim = "cp:tenant";
    public const string AgentClaim = "cp:agent";
    public const string UserClaim = "cp:user";

    public AgentIdentity(GrantedToken granted, string authenticationType)
        : base(ClaimsOf(granted.Token), authenticationType, AgentClaim, ClaimTypes.Role)
    {
        Token = granted.Token;
        Grant = granted.Grant;
    }

    public AgentToken Token { get; }

    /// <summary>What the token's scopes allow, parsed once per token per silo.</summary>
    public ScopeGrant Grant { get; }

    public string TenantId => Token.TenantId;

    public string AgentId => Token.AgentId;

    public string? UserId => Token.UserId;

    private static IEnumerable<Claim> ClaimsOf(AgentToken token)
    {
        // The SDK binds a stateful session to the name identifier: binding it to the token means a
        // session can never be picked up with another token, even of the same agent.
        yield return new Claim(ClaimTypes.NameIdentifier, "token:" + token.Id);
        yield return new Claim(TenantClaim, token.TenantId);
        yield return new Claim(AgentClaim, token.AgentId);
        if (token.UserId is not null) yield return new Claim(UserClaim, token.UserId);
    }
}
