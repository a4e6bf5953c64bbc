using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;
using ControlPlane.KillSwitches;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.ModelBinding;

namespace ControlPlane.Host.Api;

/// <summary>The operator REST API, versioned under <c>/api/v1</c>. Handlers are thin: services do the work.</summary>
internal static class OperatorApi
{
    public static IEndpointRouteBuilder MapOperatorApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1")
            .RequireAuthorization(OperatorKeyAuthenticationHandler.SchemeName)
            .AddEndpointFilter<OperatorApiExceptionFilter>();

        var kills = api.MapGroup("/kill-switches");
        kills.MapPost("", async (SetKillSwitchRequest body, HttpContext http, KillSwitchService service) =>
        {
            if (!KillScopes.TryParse(body.Scope, out var scope))
            {
                throw InvalidRequestException.For("scope", $"Scope must be one of {string.Join(", ", KillScopes.Names)}.");
            }

            var target = new KillTarget(scope, Blank(body.TenantId), Blank(body.AgentId), Blank(body.UserId), Blank(body.SessionId), Blank(body.ServerId), Blank(body.ToolName));
            var change = await service.SetAsync(http.User.Operator(), target, body.Reason);
            var response = KillSwitchResponse.From(change.Switch);
            return change.Created
                ? Results.Created($"/api/v1/kill-switches/{response.Id}", response)
                : Results.Ok(response);
        });
        kills.MapGet("", async (HttpContext http, KillSwitchService service) =>
            new ItemsResponse<KillSwitchResponse>([.. (await service.ListAsync(http.User.Operator())).Select(KillSwitchResponse.From)]));
        kills.MapPost("/{id}/clear", async (string id, ReasonRequest body, HttpContext http, KillSwitchService service) =>
            KillSwitchResponse.From(await service.ClearAsync(http.User.Operator(), id, body.Reason)));

        var tenants = api.MapGroup("/tenants");
        tenants.MapPost("", async (CreateTenantRequest body, HttpContext http, TenantService service) =>
        {
            var (tenant, created) = await service.CreateAsync(http.User.Operator(), body.Id, body.Name);
            return created ? Results.Created($"/api/v1/tenants/{tenant.Id}", TenantResponse.From(tenant)) : Results.Ok(TenantResponse.From(tenant));
        });
        tenants.MapGet("", async (HttpContext http, TenantService service) =>
            new ItemsResponse<TenantResponse>([.. (await service.ListAsync(http.User.Operator())).Select(TenantResponse.From)]));

        var tokens = tenants.MapGroup("/{tenantId}/tokens");
        tokens.MapPost("", async (string tenantId, MintTokenRequest body, HttpContext http, TokenService service) =>
        {
            var minted = await service.MintAsync(http.User.Operator(), tenantId, body.AgentId, body.UserId, body.Scopes, body.ExpiresInSeconds);
            var info = minted.Info;
            return Results.Created($"/api/v1/tenants/{tenantId}/tokens/{info.Id}",
                new MintTokenResponse(info.Id, minted.Bearer, info.TenantId, info.AgentId, info.UserId, info.Scopes, info.ExpiresAt));
        });
        tokens.MapGet("", async (string tenantId, HttpContext http, TokenService service, TimeProvider time) =>
            new ItemsResponse<TokenResponse>([.. (await service.ListAsync(http.User.Operator(), tenantId)).Select(t => TokenResponse.From(t, time.GetUtcNow()))]));
        tokens.MapDelete("/{id}", async (string tenantId, string id, HttpContext http, TokenService service, TimeProvider time) =>
            TokenResponse.From(await service.RevokeAsync(http.User.Operator(), tenantId, id), time.GetUtcNow()));

        var servers = tenants.MapGroup("/{tenantId}/servers");
        servers.MapGet("", async (string tenantId, HttpContext http, PolicyService service) =>
            new ItemsResponse<ServerView>(await service.ListServersAsync(http.User.Operator(), tenantId)));
        servers.MapPut("/{serverId}/mode", async (string tenantId, string serverId, ServerModeRequest body, HttpContext http, PolicyService service) =>
        {
            var setting = await service.SetModeAsync(http.User.Operator(), tenantId, serverId, body.Mode, body.Reason);
            return new { tenantId, serverId, mode = setting.ReadWrite ? "read-write" : "read-only", reason = setting.Reason, setBy = setting.SetBy, setAt = setting.SetAt };
        });

        api.MapUpstreamServerApi();

        var tools = api.MapGroup("/servers/{serverId}/tools/{toolName}");
        tools.MapPut("", async (string serverId, string toolName, ClassificationRequest body, HttpContext http, PolicyService service) =>
            await service.SetClassificationAsync(http.User.Operator(), serverId, toolName, body.Classification, Blank(body.TenantId), body.Reason) is var o
                ? new { serverId, toolName, tenantId = o.TenantId, classification = o.IsAction ? "action" : "read", reason = o.Reason, setBy = o.SetBy, setAt = o.SetAt }
                : null);
        tools.MapPut("/schema", async (string serverId, string toolName, SchemaOverrideRequest body, HttpContext http, PolicyService service) =>
        {
            var o = await service.SetSchemaAsync(http.User.Operator(), serverId, toolName, body.Schema, Blank(body.TenantId), body.Reason);
            return Results.Ok(new { serverId, toolName, tenantId = Blank(body.TenantId), schema = body.Schema, active = o is not null });
        });

        tenants.MapPut("/{tenantId}/audit-retention", async (string tenantId, RetentionRequest body, HttpContext http, TenantService service) =>
        {
            await service.SetAuditRetentionAsync(http.User.Operator(), tenantId, body.Days);
            return new { tenantId, days = body.Days };
        });

        tenants.MapPut("/{tenantId}/rate-limits", async (string tenantId, RateLimitRequest body, HttpContext http, PolicyService service) =>
            await service.SetRateLimitAsync(http.User.Operator(), tenantId, body.Scope, body.AgentId, body.UserId, body.ServerId, body.ToolName, body.Capacity, body.RefillPerSecond));
        tenants.MapGet("/{tenantId}/rate-limits", async (string tenantId, HttpContext http, PolicyService service) =>
            new ItemsResponse<ControlPlane.RateLimits.RateLimitSetting>(await service.ListRateLimitsAsync(http.User.Operator(), tenantId)));
        tools.MapPut("/projection", async (string serverId, string toolName, ProjectionRequest body, HttpContext http, PolicyService service) =>
            Results.Ok(await service.SetProjectionAsync(http.User.Operator(), serverId, toolName, body.Fields, body.MaxItems, body.MaxBytes, body.RedactPii, body.Remove is true, body.Reason)));

        var approvals = api.MapGroup("/approvals");
        approvals.MapGet("", async (string? status, string? tenantId, HttpContext http, ApprovalService service) =>
        {
            var by = http.User.Operator();
            var items = new List<ApprovalResponse>();
            foreach (var view in await service.ListAsync(by, status, tenantId)) items.Add(ApprovalResponse.From(await service.ShowAsync(by, view)));
            return new ItemsResponse<ApprovalResponse>(items);
        });
        // The body is optional: a bare POST approves, as it always has; {"reason"} adds why.
        approvals.MapPost("/{id}/approve", async (string id, HttpContext http, ApprovalService service, [FromBody(EmptyBodyBehavior = EmptyBodyBehavior.Allow)] ReasonRequest? body) =>
        {
            var (view, token) = await service.ApproveAsync(http.User.Operator(), id, body?.Reason);
            return new { id, confirmationToken = token, expiresAt = view.TokenExpiresAt, approvedBy = view.DecidedBy };
        });
        approvals.MapPost("/{id}/deny", async (string id, ReasonRequest body, HttpContext http, ApprovalService service) =>
            ApprovalResponse.From(await service.DenyAsync(http.User.Operator(), id, body.Reason)));

        api.MapGet("/cluster", (string? tenantId, HttpContext http, ClusterService service) =>
            service.DescribeAsync(http.User.Operator(), Blank(tenantId), http.RequestAborted));

        api.MapAuditApi();
        api.MapDrillApi();
        return app;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}

/// <summary>Turns the services' typed failures into problem details: 400, 403, 404 and 409 with a message that says what to fix.</summary>
internal sealed class OperatorApiExceptionFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (InvalidRequestException ex)
        {
            return Results.ValidationProblem(ex.Errors, detail: "The request is invalid; nothing was changed.");
        }
        catch (ForbiddenException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status403Forbidden, title: "Forbidden");
        }
        catch (NotFoundException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status404NotFound, title: "Not found");
        }
        catch (ConflictException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status409Conflict, title: "Conflict");
        }
        catch (ControlPlane.GuardState.GuardStateLimitException ex) when (!ex.Full)
        {
            // The owner grain's own check of a bound the service should have caught: still the client's input, still a 400.
            return Results.ValidationProblem(new Dictionary<string, string[]> { [ex.Field] = [ex.Message] }, detail: "The request is invalid; nothing was changed.");
        }
        catch (ControlPlane.GuardState.GuardStateLimitException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status409Conflict, title: "Guard state full",
                extensions: new Dictionary<string, object?> { ["limit"] = ex.Field });
        }
        catch (Availability.StoreUnavailableException ex) when (ex.Code != ControlPlane.Refusals.RefusalCodes.AuditUnavailable)
        {
            // A store the change needed was down: nothing was changed, from whichever silo the request reached.
            return Unavailable(context, ex.RetryAfterSeconds, ex.Code, "Guard state unavailable", ex.Message);
        }
        catch (Exception ex) when (IsTransientCluster(ex))
        {
            // The grain's silo just died and is not yet declared dead, or did not answer in time: retryable, not a 500.
            return Unavailable(context, 2, ControlPlane.Refusals.RefusalCodes.GuardUnavailable, "Cluster unavailable",
                "The silo holding the state this needs did not answer; nothing was changed. Retry in a few seconds.");
        }
        catch (Exception ex) when (OperatorAuditor.IsAuditFailure(ex))
        {
            // A permissive action whose record could not be made durable was not applied: fail closed, retry later.
            context.HttpContext.Response.Headers.RetryAfter = "5";
            return Results.Problem(
                "The audit trail could not record this action, so it was not applied. Retry shortly; protective actions (kill switches, revocations, read-only) still work.",
                statusCode: StatusCodes.Status503ServiceUnavailable, title: "Audit unavailable",
                extensions: new Dictionary<string, object?> { ["code"] = ControlPlane.Refusals.RefusalCodes.AuditUnavailable });
        }
    }

    private static IResult Unavailable(EndpointFilterInvocationContext context, int retryAfterSeconds, string code, string title, string detail)
    {
        context.HttpContext.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Problem(detail, statusCode: StatusCodes.Status503ServiceUnavailable, title: title,
            extensions: new Dictionary<string, object?> { ["code"] = code });
    }

    private static bool IsTransientCluster(Exception ex) =>
        ex is Orleans.Runtime.OrleansMessageRejectionException or Orleans.Runtime.SiloUnavailableException or TimeoutException
        || (ex.InnerException is { } inner && IsTransientCluster(inner));
}
