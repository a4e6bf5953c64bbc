using System.Security.Claims;
using System.Text.Encodings.Web;
using ControlPlane.Refusals;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Authentication;

/// <summary>
/// Authenticates agents on <c>/mcp</c> by bearer token. A bad token is a 401. An expired or revoked
/// token inside an open session is let through to the guard, which refuses each call with
/// UNAUTHENTICATED: the agent learns what happened instead of seeing its session vanish. A token that cannot be
/// checked because the cluster did not answer is a 503 with Retry-After (GUARD_UNAVAILABLE), never a 401.
/// </summary>
public sealed class AgentTokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AgentTokenValidator validator) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "AgentToken";
    private const string SessionHeader = "Mcp-Session-Id";
    private const string LookupFailedKey = "ControlPlane.AgentTokenLookupFailed";

    // Long enough for Orleans to declare a dead silo dead (about 3 s with fast death detection) or a store to blink.
    private const int RetryAfterSeconds = 2;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var bearer = BearerToken.From(Request);
        if (bearer is null) return AuthenticateResult.NoResult();

        TokenStatus status;
        GrantedToken? token;
        try
        {
            (status, token) = await validator.ValidateAsync(bearer, Context.RequestAborted);
        }
        catch (Exception ex) when (!Context.RequestAborted.IsCancellationRequested)
        {
            // The token's record could not be read (its silo died and is not yet declared dead, or its store is down).
            // The token may be perfectly good, so this is a retryable 503, never a 401 telling the agent to give it up.
            Context.Items[LookupFailedKey] = true;
            Logger.LogWarning(ex, "An agent token could not be checked: the cluster did not answer ({Error}).", ex.GetType().Name);
            return AuthenticateResult.Fail("The agent token could not be checked right now.");
        }

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
        if (Context.Items.ContainsKey(LookupFailedKey))
        {
            Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Microsoft.AspNetCore.Http.Results.Problem(
                "The control plane could not check the agent token just now (a silo or its store did not answer). The token was not rejected: retry shortly.",
                statusCode: StatusCodes.Status503ServiceUnavailable, title: "Guard unavailable",
                extensions: new Dictionary<string, object?> { ["code"] = RefusalCodes.GuardUnavailable, ["retry_after"] = RetryAfterSeconds })
                .ExecuteAsync(Context);
        }

        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = BearerToken.From(Request) is null
            ? "Bearer realm=\"controlplane\""
            : "Bearer realm=\"controlplane\", error=\"invalid_token\"";
        return Task.CompletedTask;
    }
}
