using System.Security.Claims;
using ControlPlane.Operators;

namespace ControlPlane.Host.OperatorConsole.Security;

/// <summary>The console's own schemes and policy, apart from the /api/v1 operator key and the agent tokens.</summary>
internal static class ConsoleAuthentication
{
    public const string CookieScheme = "ConsoleCookie";
    public const string OpenIdConnectScheme = "ConsoleOidc";
    public const string Policy = "Console";
    public const string CookieName = "__cp_console";

    public static ClaimsPrincipal PrincipalFor(OperatorAccount account, string method)
    {
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, account.Id),
            new(ClaimTypes.Name, account.Id),
            new(ClaimTypes.AuthenticationMethod, method),
        };
        claims.AddRange(account.Roles.Select(role => new Claim(ClaimTypes.Role, role)));
        return new ClaimsPrincipal(new ClaimsIdentity(claims, CookieScheme, ClaimTypes.Name, ClaimTypes.Role));
    }

    public static string? OperatorId(this ClaimsPrincipal principal) =>
        principal.Identity?.IsAuthenticated == true ? principal.FindFirstValue(ClaimTypes.NameIdentifier) : null;
}
