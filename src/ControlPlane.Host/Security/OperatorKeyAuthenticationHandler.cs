using System.Security.Claims;
using System.Text.Encodings.Web;
using ControlPlane.Guard.Authentication;
using ControlPlane.Operators;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Security;

/// <summary>Authenticates operators on <c>/api/v1</c> by operator key (<c>Authorization: Bearer cpo_…</c>).</summary>
internal sealed class OperatorKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IGrainFactory grains) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "OperatorKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return AuthenticateResult.NoResult();
        if (!SecretTokens.TryParse(header[7..].Trim(), SecretTokens.OperatorPrefix, out var id, out var secret))
        {
            return AuthenticateResult.Fail("Not an operator key.");
        }

        // The directory is one grain: when its silo has just crashed, every operator would be locked out until the
        // cluster notices, which is exactly when they need to act.
        var directory = grains.GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
        var account = await Operations.SiloFailover.RideOutAsync(() => directory.GetAsync(id), Context.RequestAborted);
        if (account is null || !SecretTokens.Matches(secret, account.KeyHash)) return AuthenticateResult.Fail("Unknown operator key.");

        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new OperatorIdentity(account, SchemeName)), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"controlplane-operators\"";
        await Response.WriteAsJsonAsync(new
        {
            title = "Operator key required",
            status = 401,
            detail = "Send an operator key as 'Authorization: Bearer <operatorKey>'.",
        }, options: null, contentType: "application/problem+json");
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await Response.WriteAsJsonAsync(new
        {
            title = "Forbidden",
            status = 403,
            detail = "This operator lacks the role this request needs.",
        }, options: null, contentType: "application/problem+json");
    }
}
