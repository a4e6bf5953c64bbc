using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.InFlight;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using ControlPlane.Refusals;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// The MCP endpoint's handlers for tools/list and tools/call: find the tool, run the guard, then run
/// the tool with a cancellation that a kill switch can trigger. Serves the aggregate endpoint
/// (<paramref name="endpointServerId"/> null) and the per-server ones alike.
/// </summary>
public sealed partial class GuardedToolGateway(
    ToolCatalog catalog,
    GuardPipeline guard,
    InFlightCalls inFlight,
    SessionRegistry sessions,
    AgentTokenValidator tokens,
    GuardStateCache guardState,
    CallAuditor auditor,
    Results.ResultShaper shaper,
    Limits.DownstreamProtection downstream,
    GuardMetrics metrics,
    IOptions<AuditOptions> auditOptions,
    IEnumerable<IToolServerAvailability> availability,
    ILogger<GuardedToolGateway> logger)
{
    private readonly ReadAuditPolicy readPolicy = auditOptions.Value.ReadPolicy;

    public async ValueTask<ListToolsResult> ListToolsAsync(string? endpointServerId, RequestContext<ListToolsRequestParams> request, CancellationToken cancellationToken)
    {
        var agent = AgentOf(request);
        await EnsureSessionAsync(request, agent, cancellationToken);

        var result = new ListToolsResult();
        if (tokens.StatusOf(agent.Token) != TokenStatus.Valid) return result;

        // An agent sees exactly what it could call: tools its scopes cover, and action tools only where
        // the server is read-write for its tenant (read-only first).
        var policy = guardState.Policy;
        foreach (var tool in catalog.ForEndpoint(endpointServerId, agent.TenantId))
        {
            var isAction = policy.IsAction(tool, agent.TenantId);
            if (!agent.Grant.Allows(tool.ServerId, tool.ToolName, isAction)) continue;
            if (isAction && !policy.IsReadWrite(agent.TenantId, tool.ServerId)) continue;
            result.Tools.Add(shaper.Advertised.For(tool, policy, isAction, ownName: endpointServerId is not null));
        }

        if (!await TryRecordAsync(auditor.RecordListAsync(agent.TenantId, agent.AgentId, agent.UserId, request.Server.SessionId, agent.Token.Id, endpointServerId, result.Tools.Count))
            && readPolicy == ReadAuditPolicy.FailClosed)
        {
            throw new McpProtocolException("The tool list was withheld because its audit record could not be made durable; retry shortly.", McpErrorCode.InternalError);
        }

        return result;
    }

    public async ValueTask<CallToolResult> CallToolAsync(string? endpointServerId, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var agent = AgentOf(request);
        var name = request.Params?.Name ?? throw new McpProtocolException("tools/call needs a tool name.", McpErrorCode.InvalidParams);
        // The tenant's view: its own registration of a server in place of the global one, another tenant's never.
        var tool = catalog.Find(endpointServerId, name, agent.TenantId);
        if (tool is null)
        {
            return NotListedYet(endpointServerId, name, agent.TenantId)?.ToCallToolResult()
                ?? throw new McpProtocolException($"Unknown tool: '{name}'. Call tools/list for the tools this endpoint serves.", McpErrorCode.InvalidParams);
        }

        await EnsureSessionAsync(request, agent, cancellationToken);

        using var span = GuardTelemetry.Source.StartActivity(GuardTelemetry.CallSpan);
        if (span is not null)
        {
            span.SetTag(GuardTelemetry.TenantTag, agent.TenantId);
            span.SetTag(GuardTelemetry.AgentTag, agent.AgentId);
            span.SetTag(GuardTelemetry.ServerTag, tool.ServerId);
            span.SetTag(GuardTelemetry.ToolTag, tool.ToolName);
        }

        var identity = new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, request.Server.SessionId, tool.ServerId, tool.ToolName);
        var call = new GuardCall(identity, agent.Token, agent.Grant, tool, request.Params.Arguments)
        {
            IsAction = guardState.Policy.IsAction(tool, identity.TenantId),
            DuplicateKeys = request.JsonRpcRequest?.Params is { } raw ? Schemas.DuplicateKeys.Find(raw) : [],
        };
        var audit = auditor.Begin(call);
        var structured = tool.OwnNameTool.OutputSchema is null;

        var guardStarted = System.Diagnostics.Stopwatch.GetTimestamp();
        Refusal? refusal;
        try
        {
            refusal = await guard.EvaluateAsync(call, cancellationToken);
        }
        catch (Exception ex) when (ex is not McpProtocolException && !cancellationToken.IsCancellationRequested)
        {
            // A grain the guard needs could not answer (its silo just died, storage is down): the guard cannot
            // decide, so nothing runs, and the caller gets a refusal it can retry instead of a bare error.
            LogGuardUndecided(logger, tool.ServerId, tool.ToolName, ex.GetType().Name, ex.Message);
            refusal = new Refusal(RefusalCodes.GuardUnavailable, "The guard could not reach the state it needs to decide, so the call was not run. Retry shortly.")
            {
                RetryAfterSeconds = 2,
            };
        }

        metrics.Called(tool.ServerId, tool.ToolName, refusal?.Code, System.Diagnostics.Stopwatch.GetElapsedTime(guardStarted).TotalMilliseconds);
        span?.SetTag(GuardTelemetry.DecisionTag, refusal is null ? "allowed" : "refused");
        if (refusal is not null)
        {
            span?.SetTag(GuardTelemetry.CodeTag, refusal.Code);
            // A refusal runs nothing, so it is returned even if its record cannot be written.
            await TryRecordAsync(audit.RecordRefusalAsync(refusal));
            return refusal.ToCallToolResult(structured);
        }

        // The guard consumed the confirmation token; the tool never sees it.
        request.Params.Arguments?.Remove(SchemaStep.ConfirmationArgument);

        var isAction = call.IsAction;
        if (isAction)
        {
            // Two durable writes to two stores, neither needing the other: the intent record (audit) and the token's
            // consumption (approval grain). They run together; the action runs only once both are durable.
            var intent = TryRecordAsync(audit.RecordIntentAsync(call.ConfirmationId));
            var consumed = TryConsumeAsync(call.ReservedConfirmation);
            var intentDurable = await intent;
            if (!await consumed)
            {
                var undecided = new Refusal(RefusalCodes.GuardUnavailable, "The confirmation could not be recorded as used, so the action was not run. Retry shortly with the same confirmation_token.")
                {
                    RetryAfterSeconds = 2,
                };
                span?.SetTag(GuardTelemetry.CodeTag, undecided.Code);
                await TryRecordAsync(audit.RecordRefusalAsync(undecided));
                return undecided.ToCallToolResult(structured);
            }

            if (!intentDurable)
            {
                span?.SetTag(GuardTelemetry.CodeTag, RefusalCodes.AuditUnavailable);
                return AuditUnavailable("The action was not run because its audit record could not be made durable.", structured);
            }
        }

        CallToolResult result;
        using (var flight = inFlight.Begin(identity, cancellationToken))
        {
            try
            {
                if (flight.KilledBy is not null) throw new OperationCanceledException(flight.Token);
                using (GuardTelemetry.Source.StartActivity("tool " + tool.ServerId))
                {
                    result = await downstream.ExecuteAsync(tool.ServerId, tool.TenantId, ct => tool.Invoker(request, ct), flight.Token);
                }
            }
            catch (Limits.DownstreamUnavailableException ex)
            {
                await TryRecordAsync(audit.RecordFailureAsync("upstream_unavailable", RefusalCodes.UpstreamUnavailable));
                span?.SetTag(GuardTelemetry.CodeTag, RefusalCodes.UpstreamUnavailable)?.SetStatus(System.Diagnostics.ActivityStatusCode.Error);
                return new Refusal(
                    RefusalCodes.UpstreamUnavailable,
                    $"{ex.Message} Retry after {Math.Ceiling(ex.RetryAfter.TotalSeconds):0} s; do not hammer it.")
                {
                    RetryAfterSeconds = (int)Math.Max(1, Math.Ceiling(ex.RetryAfter.TotalSeconds)),
                }.ToCallToolResult(structured);
            }
            catch (OperationCanceledException) when (flight.KilledBy is { } killedDuring)
            {
                await TryRecordAsync(audit.RecordFailureAsync("killed", RefusalCodes.Killed));
                span?.SetTag(GuardTelemetry.CodeTag, RefusalCodes.Killed);
                return KillSwitchStep.Killed(killedDuring).ToCallToolResult(structured);
            }
            catch (Exception ex)
            {
                await TryRecordAsync(audit.RecordFailureAsync(ex is OperationCanceledException ? "cancelled" : ex.GetType().Name));
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.GetType().Name);
                throw;
            }
        }

        // Read results are projected and redacted before they are hashed for the audit and sent: the audit's
        // result hash is of exactly what the agent received.
        if (!isAction) result = shaper.Shape(result, guardState.Policy.Projection(tool));
        span?.SetTag(GuardTelemetry.OutcomeTag, result.IsError is true ? "error" : "success");

        if (isAction)
        {
            // An action that ran is reported as it ran: its intent is already durable, and a result record the
            // store refuses now is written once it is back.
            await audit.RecordActionResultAsync(result, call.ConfirmationId);
            return result;
        }

        if (await TryRecordAsync(audit.RecordResultAsync(result, call.ConfirmationId)) || readPolicy == ReadAuditPolicy.FailOpen)
        {
            return result;
        }

        span?.SetTag(GuardTelemetry.CodeTag, RefusalCodes.AuditUnavailable);
        return AuditUnavailable("The result was withheld because its audit record could not be made durable.", structured);
    }

    /// <summary>
    /// A call to a server this tenant is served that has listed no tools yet (an upstream starting, or queued for a
    /// process slot) is refused as unavailable, with the reason, rather than failing as an unknown tool.
    /// </summary>
    private Refusal? NotListedYet(string? endpointServerId, string name, string tenantId)
    {
        var separator = name.IndexOf(ToolCatalog.Separator, StringComparison.Ordinal);
        var serverId = endpointServerId ?? (separator > 0 ? name[..separator] : null);
        if (serverId is null || !catalog.Serves(serverId, tenantId) || catalog.ForEndpoint(serverId, tenantId).Any()) return null;

        var why = availability.Select(a => a.WhyUnavailable(serverId, tenantId)).FirstOrDefault(w => w is not null) ?? "it has not listed its tools yet";
        return new Refusal(RefusalCodes.UpstreamUnavailable, $"Tool server '{serverId}' is unavailable: {why}. Retry later; do not hammer it.")
        {
            RetryAfterSeconds = 5,
        };
    }

    private static CallToolResult AuditUnavailable(string what, bool structured) => new Refusal(
        RefusalCodes.AuditUnavailable,
        what + " Retry in a little while; if it persists, tell the operators that auditing is down.")
    {
        RetryAfterSeconds = 5,
    }.ToCallToolResult(structured);

    private static async Task<bool> TryConsumeAsync(IReservedConfirmation? reserved)
    {
        if (reserved is null) return true;
        try
        {
            return await reserved.ConsumeAsync();
        }
        catch (Exception)
        {
            // Storage or the grain's silo failed, so nothing runs. A failed write already dropped the grain's state;
            // otherwise give the token back so the agent's retry need not wait for the reservation to lapse.
            try { await reserved.ReleaseAsync(); } catch (Exception) { }
            return false;
        }
    }

    private static async Task<bool> TryRecordAsync(Task record)
    {
        try
        {
            await record;
            return true;
        }
        catch (AuditUnavailableException)
        {
            return false;
        }
    }

    private async ValueTask EnsureSessionAsync<T>(RequestContext<T> request, AgentIdentity agent, CancellationToken cancellationToken)
    {
        if (request.Server.SessionId is { } sessionId && !await sessions.EnsureOpenedAsync(sessionId, agent, cancellationToken))
        {
            throw new McpProtocolException("This session belongs to another agent.", McpErrorCode.InvalidRequest);
        }
    }

    private static AgentIdentity AgentOf<T>(RequestContext<T> request) =>
        request.User?.Identity as AgentIdentity
        ?? throw new McpProtocolException("The request is not authenticated as an agent.", McpErrorCode.InvalidRequest);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The guard could not decide a call of {Server}/{Tool} and refused it ({ErrorType}: {Error}).")]
    private static partial void LogGuardUndecided(ILogger logger, string server, string tool, string errorType, string error);
}
