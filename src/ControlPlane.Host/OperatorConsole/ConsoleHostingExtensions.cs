using System.Security.Claims;
using ControlPlane.Host.OperatorConsole.Components;
using ControlPlane.Host.OperatorConsole.Live;
using ControlPlane.Host.OperatorConsole.Security;
using ControlPlane.Host.Operations;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.Extensions.Options;
using MudBlazor.Services;

namespace ControlPlane.Host.OperatorConsole;

public static class ConsoleHostingExtensions
{
    /// <summary>
    /// Adds the operator console: Blazor Server pages with MudBlazor over the same service layer as the REST
    /// API, behind its own cookie sign-in (and, if configured, OpenID Connect), separate from operator keys.
    /// </summary>
    public static IHostApplicationBuilder AddControlPlaneConsole(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(ConsoleOptions.SectionName);
        var settings = section.Get<ConsoleOptions>() ?? new ConsoleOptions();
        var problems = settings.Validate().ToList();
        if (problems.Count > 0) throw new OptionsValidationException(ConsoleOptions.SectionName, typeof(ConsoleOptions), problems);
        builder.Services.AddOptions<ConsoleOptions>().Bind(section);
        if (!settings.Enabled) return builder;

        // Static web assets (MudBlazor, blazor.web.js) come from the build's manifest when not published.
        if (builder is WebApplicationBuilder web) web.WebHost.UseStaticWebAssets();

        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddMudServices();
        builder.Services.AddCascadingAuthenticationState();
        builder.Services.AddAntiforgery(o => o.Cookie.Name = "__cp_console_af");

        var authentication = builder.Services.AddAuthentication()
            .AddCookie(ConsoleAuthentication.CookieScheme, o =>
            {
                o.Cookie.Name = ConsoleAuthentication.CookieName;
                o.Cookie.HttpOnly = true;
                // Strict: no other site can make the browser send it, which also shields the Blazor circuit.
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.Cookie.Path = "/";
                o.ExpireTimeSpan = settings.SessionLifetime;
                o.SlidingExpiration = true;
                o.LoginPath = ConsoleEndpoints.SignInPath;
                o.ReturnUrlParameter = "returnUrl";
            });

        if (settings.OpenIdConnect.Enabled)
        {
            var oidc = settings.OpenIdConnect;
            authentication.AddOpenIdConnect(ConsoleAuthentication.OpenIdConnectScheme, o =>
            {
                o.Authority = oidc.Authority;
                o.ClientId = oidc.ClientId;
                o.ClientSecret = oidc.ClientSecret;
                o.ResponseType = "code";
                o.UsePkce = true;
                o.CallbackPath = "/console/signin-oidc";
                o.SignedOutCallbackPath = "/console/signout-oidc";
                o.SignInScheme = ConsoleAuthentication.CookieScheme;
                o.SaveTokens = false;
                o.Scope.Clear();
                foreach (var scope in oidc.Scopes) o.Scope.Add(scope);
                o.Events.OnTicketReceived = async context =>
                {
                    // The provider says who this is; the operator directory says what they may do.
                    var id = context.Principal?.FindFirstValue(oidc.OperatorClaim);
                    var account = await context.HttpContext.RequestServices.GetRequiredService<ConsoleAccounts>().FindAsync(id);
                    if (account is null)
                    {
                        context.Fail($"No operator account matches the signed-in identity's '{oidc.OperatorClaim}'.");
                        return;
                    }

                    context.Principal = ConsoleAuthentication.PrincipalFor(account, "oidc");
                };
            });
        }

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(ConsoleAuthentication.Policy, p => p.AddAuthenticationSchemes(ConsoleAuthentication.CookieScheme).RequireAuthenticatedUser());

        builder.Services.AddSingleton<OperatorService>();
        builder.Services.AddSingleton<ConsoleAccounts>();
        builder.Services.AddSingleton<SignInThrottle>();
        builder.Services.AddSingleton<CallStatistics>();
        builder.Services.AddScoped<CurrentOperator>();
        builder.Services.AddSingleton<CurrentOperatorFromCookie>();
        return builder;
    }

    /// <summary>Serves the console at <c>/console</c>, with security headers and anti-forgery.</summary>
    public static WebApplication MapControlPlaneConsole(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IOptions<ConsoleOptions>>().Value.Enabled) return app;

        // Start counting calls from the start, not from the first visit to the overview.
        app.Services.GetRequiredService<CallStatistics>();

        app.UseMiddleware<ConsoleSecurityHeaders>();
        app.UseAntiforgery();
        app.MapStaticAssets();
        app.MapConsoleEndpoints();
        // The policy names the cookie scheme, so the Blazor hub (which has no [Authorize] of its own) authenticates the
        // circuit's user with it; pages opt out only by [AllowAnonymous] (the sign-in page).
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode().RequireAuthorization(ConsoleAuthentication.Policy);
        return app;
    }
}
