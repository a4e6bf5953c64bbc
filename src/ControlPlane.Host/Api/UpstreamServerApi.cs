using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;

namespace ControlPlane.Host.Api;

/// <summary>
/// Upstream MCP servers: register, list (never their secrets), trust their own tool annotations or not, remove. An id may carry a global registration and
/// one per tenant; <c>DELETE /servers/{id}?tenantId=</c> names a tenant's, without it the global (or the only) one.
/// </summary>
internal static class UpstreamServerApi
{
    public static RouteGroupBuilder MapUpstreamServerApi(this RouteGroupBuilder api)
    {
        var servers = api.MapGroup("/servers");
        servers.MapPost("", async (RegisterUpstreamRequest body, HttpContext http, UpstreamServerService service) =>
        {
            var (view, created) = await service.RegisterAsync(http.User.Operator(), body.Id?.Trim(), Blank(body.TenantId), body.Transport?.Trim(),
                Blank(body.Command), body.Args, Blank(body.Url), body.Env, body.Headers, body.TrustAnnotations, http.RequestAborted);
            return created ? Results.Created($"/api/v1/servers/{view.Id}{(view.TenantId is null ? "" : "?tenantId=" + view.TenantId)}", view) : Results.Ok(view);
        });
        servers.MapGet("", async (HttpContext http, UpstreamServerService service) =>
            new ItemsResponse<Upstreams.UpstreamView>(await service.ListAsync(http.User.Operator())));
        servers.MapPut("/{id}/trust-annotations", async (string id, TrustAnnotationsRequest body, HttpContext http, UpstreamServerService service) =>
            await service.SetTrustAnnotationsAsync(http.User.Operator(), id, Blank(body.TenantId), body.Trust, body.Reason, http.RequestAborted));
        servers.MapDelete("/{id}", async (string id, string? tenantId, HttpContext http, UpstreamServerService service) =>
            await service.RemoveAsync(http.User.Operator(), id, Blank(tenantId), http.RequestAborted));
        return servers;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
