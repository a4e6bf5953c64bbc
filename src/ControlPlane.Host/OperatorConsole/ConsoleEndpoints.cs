using System.Globalization;
using ControlPlane.Host.Api;
using ControlPlane.Host.OperatorConsole.Security;
using ControlPlane.Host.Operations;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.OperatorConsole;

/// <summary>The console's plain HTTP endpoints: password sign-in, identity-provider sign-in and sign-out (all anti-forgery checked).</summary>
internal static partial class ConsoleEndpoints
{
    public const string SignInPath = "/console/signin";

    public static void MapConsoleEndpoints(this IEndpointRouteBuilder app)
    {
        // Minimal APIs validate the anti-forgery token of every form post (UseAntiforgery is in the pipeline).
        app.MapPost(SignInPath, SignInAsync).DisableRequestTimeout();
        app.MapPost("/console/signout", async (HttpContext http) =>
        {
            await http.SignOutAsync(ConsoleAuthentication.CookieScheme);
            return Results.LocalRedirect(SignInPath);
        }).RequireAuthorization(ConsoleAuthentication.Policy);

        // The audit export as a plain download for the signed-in operator (same filters and checks as /api/v1/audit/export).
        app.MapGet("/console/audit/export", async (HttpContext http, AuditService service, CurrentOperatorFromCookie from) =>
                await AuditApi.ExportAsync(http, service, await from.GetAsync(http.User)))
            .RequireAuthorization(ConsoleAuthentication.Policy)
            .AddEndpointFilter<OperatorApiExceptionFilter>();

        app.MapGet("/console/signin/oidc", (HttpContext http, IOptions<ConsoleOptions> options, string? returnUrl) =>
            options.Value.OpenIdConnect.Enabled
                ? Results.Challenge(new AuthenticationProperties { RedirectUri = SafeReturnUrl(returnUrl) }, [ConsoleAuthentication.OpenIdConnectScheme])
                : Results.NotFound());
    }

    private static async Task<IResult> SignInAsync(
        HttpContext http,
        [FromForm] string? username,
        [FromForm] string? password,
        [FromForm] string? returnUrl,
        ConsoleAccounts accounts,
        SignInThrottle throttle,
        IOptions<ConsoleOptions> options,
        ILogger<ConsoleAccounts> logger)
    {
        var account = (username ?? "").Trim();
        var address = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        var back = SafeReturnUrl(returnUrl);

        if (throttle.RetryAfter(account, address) is { } wait)
        {
            LogThrottled(logger, address);
            var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
            return Results.LocalRedirect($"{SignInPath}?error=throttled&retryAfter={seconds.ToString(CultureInfo.InvariantCulture)}&returnUrl={Uri.EscapeDataString(back)}");
        }

        var found = await accounts.VerifyPasswordAsync(account, password);
        if (found is null)
        {
            throttle.Failed(account, address);
            LogFailed(logger, address);
            return Results.LocalRedirect($"{SignInPath}?error=invalid&returnUrl={Uri.EscapeDataString(back)}");
        }

        throttle.Succeeded(account);
        await http.SignInAsync(ConsoleAuthentication.CookieScheme, ConsoleAuthentication.PrincipalFor(found, "password"),
            new AuthenticationProperties { IsPersistent = false });
        LogSignedIn(logger, found.Id);
        return Results.LocalRedirect(back);
    }

    /// <summary>Only console pages: never an open redirect to another site.</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        returnUrl is not null && returnUrl.StartsWith("/console", StringComparison.Ordinal) && !returnUrl.StartsWith("//", StringComparison.Ordinal)
            && !returnUrl.Contains('\\', StringComparison.Ordinal) && !returnUrl.StartsWith(SignInPath, StringComparison.Ordinal)
            ? returnUrl
            : "/console";

    // The attempted user name is deliberately not logged: people type passwords into it.
    [LoggerMessage(Level = LogLevel.Warning, Message = "Console sign-in failed from {Address}.")]
    private static partial void LogFailed(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Console sign-in throttled for a request from {Address}.")]
    private static partial void LogThrottled(ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "Operator {OperatorId} signed in to the console.")]
    private static partial void LogSignedIn(ILogger logger, string operatorId);
}
