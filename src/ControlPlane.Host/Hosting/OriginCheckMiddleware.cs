using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Hosting;

/// <summary>
/// Refuses browser requests from origins that are not loopback or explicitly allowed, so a web page
/// cannot use DNS rebinding to drive the control plane from a user's browser. Requests without an
/// Origin header (MCP clients, curl, scripts) pass; the Host header is checked by host filtering.
/// </summary>
internal sealed class OriginCheckMiddleware(RequestDelegate next, IOptions<ControlPlaneOptions> options)
{
    private readonly HashSet<string> _allowed = options.Value.AllowedOrigins
        .Select(o => new Uri(o).GetLeftPart(UriPartial.Authority).TrimEnd('/'))
        .ToHashSet(StringComparer.OrdinalIgnoreCase);

    public Task InvokeAsync(HttpContext context)
    {
        var origin = context.Request.Headers.Origin;
        if (origin.Count == 0 || IsAllowed(origin.ToString())) return next(context);

        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return context.Response.WriteAsJsonAsync(new
        {
            type = "https://controlplane.dev/problems/origin-not-allowed",
            title = "Origin not allowed",
            status = 403,
            detail = "This origin may not call the control plane. Operators add trusted origins under ControlPlane:AllowedOrigins.",
        }, options: null, contentType: "application/problem+json");
    }

    private bool IsAllowed(string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri)) return false;
        if (uri.IsLoopback && (uri.Host is "localhost" or "127.0.0.1" or "[::1]")) return true;
        return _allowed.Contains(uri.GetLeftPart(UriPartial.Authority).TrimEnd('/'));
    }
}
