using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Authentication;

/// <summary>
/// Authenticates agents on <c>/mcp</c> by bearer token. A bad token is a 401. An expired or revoked
/// token inside an open session is let through to the guard, which refuses each call with
/// UNAUTHENTICATED: the agent learns what happened instead of seeing its session vanish.
/// </summary>
public sealed class AgentTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AgentTokenValidator validator) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "AgentToken";
    private const string SessionHeader = "Mcp-Session-Id";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var bearer = BearerToken.From(Request);
        if (bearer is null) return AuthenticateResult.NoResult();

        var (status, token) = await validator.ValidateAsync(bearer, Context.RequestAborted);
        if (token is null || status == TokenStatus.Invalid) return AuthenticateResult.Fail("The bearer token is not a valid agent token.");
        if (status != TokenStatus.Valid && !Request.Headers.ContainsKey(SessionHeader))
        {
            return AuthenticateResult.Fail(status == TokenStatus.Expired ? "The agent token has expired." : "The agent token has been revoked.");
        }

        var principal = new ClaimsPrincipal(new AgentIdentity(token, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = BearerToken.From(Request) is null
            ? "Bearer realm=\"controlplane\""
            : "Bearer realm=\"controlplane\", error=\"invalid_token\"";
        return Task.CompletedTask;
    }
}
