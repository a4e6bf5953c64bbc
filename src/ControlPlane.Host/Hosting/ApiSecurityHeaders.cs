namespace ControlPlane.Host.Hosting;

/// <summary>
/// Headers for the machine-facing endpoints (/api/v1, /mcp): answers that may hold a freshly minted token
/// or a confirmation token are never cached, never sniffed into another type and never framed. The console
/// sets its own policy.
/// </summary>
internal static class ApiSecurityHeaders
{
    public static IApplicationBuilder UseApiSecurityHeaders(this IApplicationBuilder app) => app.Use(static (context, next) =>
    {
        var path = context.Request.Path;
        if (path.StartsWithSegments("/api") || path.StartsWithSegments("/mcp"))
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.CacheControl = "no-store";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'";
        }

        return next(context);
    });
}
