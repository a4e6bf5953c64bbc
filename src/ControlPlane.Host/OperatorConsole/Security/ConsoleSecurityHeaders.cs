namespace ControlPlane.Host.OperatorConsole.Security;

/// <summary>
/// Browser hardening for the console's pages. Blazor Server needs no inline or eval'd script, only its own
/// script files and a same-origin WebSocket; MudBlazor sets inline styles, hence style-src 'unsafe-inline'.
/// </summary>
internal sealed class ConsoleSecurityHeaders(RequestDelegate next)
{
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

    public Task InvokeAsync(HttpContext context)
    {
        if (IsConsole(context.Request.Path))
        {
            context.Response.OnStarting(static state =>
            {
                var headers = ((HttpContext)state).Response.Headers;
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                // Not no-referrer: that makes browsers send "Origin: null" on form posts, which the origin check rightly refuses.
                headers["Referrer-Policy"] = "same-origin";
                headers["Cross-Origin-Opener-Policy"] = "same-origin";
                headers.CacheControl = "no-store";
                return Task.CompletedTask;
            }, context);
        }

        return next(context);
    }

    private static bool IsConsole(PathString path) =>
        path.StartsWithSegments("/console", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments("/_blazor", StringComparison.OrdinalIgnoreCase);
}
