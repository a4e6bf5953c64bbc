using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;

namespace ControlPlane.Host.Api;

/// <summary>Upstream MCP servers: register, list (never their secrets), remove.</summary>
internal static class UpstreamServerApi
{
    public static RouteGroupBuilder MapUpstreamServerApi(this RouteGroupBuilder api)
    {
        var servers = api.MapGroup("/servers");
        servers.MapPost("", async (RegisterUpstreamRequest body, HttpContext http, UpstreamServerService service) =>
        {
            var (view, created) = await service.RegisterAsync(http.User.Operator(), body.Id?.Trim(), Blank(body.TenantId), body.Transport?.Trim(),
                Blank(body.Command), body.Args, Blank(body.Url), body.Env, body.Headers, http.RequestAborted);
            return created ? Results.Created($"/api/v1/servers/{view.Id}", view) : Results.Ok(view);
        });
        servers.MapGet("", async (HttpContext http, UpstreamServerService service) =>
            new ItemsResponse<Upstreams.UpstreamView>(await service.ListAsync(http.User.Operator())));
        servers.MapDelete("/{id}", async (string id, HttpContext http, UpstreamServerService service) =>
            await service.RemoveAsync(http.User.Operator(), id, http.RequestAborted));
        return servers;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
