using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ModelContextProtocol;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Host.Mcp;

internal static class McpEndpointExtensions
{
    public const string ServerIdRouteValue = "serverId";

    /// <summary>
    /// Streamable HTTP with stateful sessions. Each session is bound, when it opens, to the endpoint it
    /// was opened on (all servers at /mcp, one at /mcp/{serverId}); every list and call then goes
    /// through the guarded gateway.
    /// </summary>
    public static IServiceCollection AddGuardedMcp(this IServiceCollection services, SessionOptions sessions)
    {
        services.AddSingleton<ToolListChangeNotifier>();
        // The SDK picks the migration handler up from DI: it records handshakes and resumes parked sessions.
        services.AddSingleton<ISessionMigrationHandler, SessionResumption>();
        services.AddMcpServer(options =>
            {
                options.ServerInfo = new Implementation { Name = "controlplane", Version = typeof(McpEndpointExtensions).Assembly.GetName().Version?.ToString(3) ?? "0.1.0" };
                options.ServerInstructions = "Tool calls pass through ControlPlane. A refused call returns isError with a JSON object whose 'code' says why and 'message' says what to do next.";
            })
            // A tools/call the SDK cannot even read is an attempt too: audited as refused before its error goes back.
            .WithMessageFilters(filters => filters.AddIncomingFilter(RejectedRequestAuditing.Filter))
            .WithHttpTransport(options =>
            {
                options.SessionMode = HttpServerSessionMode.Stateful;
#pragma warning disable MCP9006 // Stateful sessions are what the guard keys kill switches and approvals on; these tune them.
                options.IdleTimeout = sessions.ParkAfter;
                options.MaxIdleSessionCount = sessions.MaxIdleLive;
#pragma warning restore MCP9006
                options.ConfigureSessionOptions = static (http, session, _) =>
                {
                    var endpoint = EndpointOf(http);
                    var gateway = http.RequestServices.GetRequiredService<GuardedToolGateway>();
                    session.Capabilities ??= new ServerCapabilities();
                    session.Capabilities.Tools ??= new ToolsCapability();
                    session.Capabilities.Tools.ListChanged = true;
                    session.Handlers.ListToolsHandler = (request, ct) => gateway.ListToolsAsync(endpoint, request, ct);
                    session.Handlers.CallToolHandler = (request, ct) => gateway.CallToolAsync(endpoint, request, ct);

                    // Upstream resources, resource templates, subscriptions, prompts and completions, as guarded and audited reads.
                    var reads = http.RequestServices.GetRequiredService<Upstreams.UpstreamReadGateway>();
                    session.Capabilities.Resources ??= new ResourcesCapability();
                    session.Capabilities.Resources.Subscribe = true;
                    session.Capabilities.Prompts ??= new PromptsCapability();
                    session.Handlers.ListResourcesHandler = (request, ct) => reads.ListResourcesAsync(endpoint, request, ct);
                    session.Handlers.ReadResourceHandler = (request, ct) => reads.ReadResourceAsync(endpoint, request, ct);
                    session.Handlers.ListResourceTemplatesHandler = (request, ct) => reads.ListResourceTemplatesAsync(endpoint, request, ct);
                    session.Handlers.SubscribeToResourcesHandler = (request, ct) => reads.SubscribeAsync(endpoint, request, ct);
                    session.Handlers.UnsubscribeFromResourcesHandler = (request, ct) => reads.UnsubscribeAsync(endpoint, request, ct);
                    session.Handlers.ListPromptsHandler = (request, ct) => reads.ListPromptsAsync(endpoint, request, ct);
                    session.Handlers.GetPromptHandler = (request, ct) => reads.GetPromptAsync(endpoint, request, ct);
                    session.Capabilities.Completions ??= new CompletionsCapability();
                    session.Handlers.CompleteHandler = (request, ct) => reads.CompleteAsync(endpoint, request, ct);
                    return Task.CompletedTask;
                };
#pragma warning disable MCPEXP002 // The session handler is how we learn that a session ended, to forget it.
                options.RunSessionHandler = static async (http, server, ct) =>
                {
                    // Resolved now: the session outlives the request that opened it, whose HttpContext and
                    // RequestServices are disposed (and the context recycled) long before the session ends.
                    var notifier = http.RequestServices.GetRequiredService<ToolListChangeNotifier>();
                    var reads = http.RequestServices.GetRequiredService<Upstreams.UpstreamReadGateway>();
                    var registry = http.RequestServices.GetRequiredService<SessionRegistry>();
                    notifier.Opened(server, EndpointOf(http));
                    reads.Opened(server);
                    try
                    {
                        await server.RunAsync(ct);
                    }
                    finally
                    {
                        notifier.Closed(server);
                        reads.Forget(server);
                        if (server.SessionId is { } id) registry.Forget(id);
                    }
                };
#pragma warning restore MCPEXP002
            });
        return services;
    }

    /// <summary>The server id of the endpoint a request reached (<c>/mcp/{serverId}</c>), or null for <c>/mcp</c>.</summary>
    public static string? EndpointOf(HttpContext context) => context.GetRouteValue(ServerIdRouteValue) as string;

    public static IEndpointRouteBuilder MapGuardedMcp(this IEndpointRouteBuilder app)
    {
        app.MapMcp("/mcp").RequireAuthorization(AgentTokenAuthenticationHandler.SchemeName).RequireJsonBody().ClosesSessionsOnDelete();
        app.MapMcp($"/mcp/{{{ServerIdRouteValue}}}")
            .RequireAuthorization(AgentTokenAuthenticationHandler.SchemeName)
            .RequireJsonBody()
            .ClosesSessionsOnDelete()
            .Add(endpoint =>
            {
                // An unknown server is a 404, not an empty endpoint an agent could mistake for a real one.
                var inner = endpoint.RequestDelegate!;
                endpoint.RequestDelegate = context =>
                {
                    var serverId = EndpointOf(context);
                    var catalog = context.RequestServices.GetRequiredService<ToolCatalog>();
                    if (serverId is null || !catalog.HasServer(serverId))
                    {
                        context.Response.StatusCode = StatusCodes.Status404NotFound;
                        return Task.CompletedTask;
                    }

                    return inner(context);
                };
            });
        return app;
    }

    /// <summary>
    /// A DELETE ends the session for good: its grain is marked closed so that no silo resumes it. The SDK only
    /// disposes the live state of the silo the DELETE reaches.
    /// </summary>
    private static TBuilder ClosesSessionsOnDelete<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        builder.Add(static endpoint =>
        {
            var inner = endpoint.RequestDelegate!;
            endpoint.RequestDelegate = async context =>
            {
                if (HttpMethods.IsDelete(context.Request.Method)
                    && context.User.Identity is AgentIdentity agent
                    && context.Request.Headers["Mcp-Session-Id"].ToString() is { Length: > 0 } sessionId)
                {
                    await context.RequestServices.GetRequiredService<SessionRegistry>().CloseAsync(sessionId, agent, context.RequestAborted);
                }

                await inner(context);
            };
        });
        return builder;
    }

    /// <summary>
    /// A POST without a JSON content type is a 415 with a JSON-RPC error. The SDK reads the body with
    /// ReadFromJsonAsync, which throws (a 500) when the Content-Type header is missing altogether.
    /// </summary>
    private static TBuilder RequireJsonBody<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder
    {
        builder.Add(static endpoint =>
        {
            var inner = endpoint.RequestDelegate!;
            endpoint.RequestDelegate = context =>
            {
                if (!HttpMethods.IsPost(context.Request.Method) || context.Request.HasJsonContentType()) return inner(context);

                context.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
                return context.Response.WriteAsJsonAsync(new JsonRpcErrorBody(
                    "2.0", null, new JsonRpcErrorDetail((int)McpErrorCode.InvalidRequest, "Unsupported Media Type: send the JSON-RPC message with 'Content-Type: application/json'.")));
            };
        });
        return builder;
    }

    private sealed record JsonRpcErrorBody(string Jsonrpc, object? Id, JsonRpcErrorDetail Error);

    private sealed record JsonRpcErrorDetail(int Code, string Message);
}
