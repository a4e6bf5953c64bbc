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
/// The MCP endpoint's handlers for tools/list and tools/call, thin adapters: tools/list shows an agent what it could
/// call; tools/call finds the tool, makes the call (<see cref="GuardCallBuilder"/>) and runs it through the one
/// <see cref="GuardPipeline"/>. Serves the aggregate endpoint (<c>endpointServerId</c> null) and the per-server ones alike.
/// </summary>
public sealed class GuardedToolGateway(
    ToolCatalog catalog,
    GuardCallBuilder builder,
    GuardPipeline pipeline,
    SessionRegistry sessions,
    AgentTokenValidator tokens,
    GuardStateCache guardState,
    CallAuditor auditor,
    Results.ResultShaper shaper,
    IOptions<AuditOptions> auditOptions,
    IEnumerable<IToolServerAvailability> availability)
{
    /// <summary>Set on a request's items once it was audited here, so the host's rejected-request auditing skips it.</summary>
    public const string AuditedItem = "cp:audited";

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

        if (!await CallAuditor.TryRecordAsync(auditor.RecordListAsync(agent.TenantId, agent.AgentId, agent.UserId, request.Server.SessionId, agent.Token.Id, endpointServerId, result.Tools.Count))
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
            if (NotListedYet(endpointServerId, name, agent.TenantId) is { } unavailable) return unavailable.ToCallToolResult();
            // Probing for tools shows up in the audit, then gets the JSON-RPC error MCP prescribes.
            await CallAuditor.TryRecordAsync(auditor.RecordUnroutableAsync(CallAuditor.CallKind, agent, request.Server.SessionId, endpointServerId, name,
                CallAuditor.UnknownToolCode, request.Params.Arguments));
            request.Items[AuditedItem] = true;
            throw new McpProtocolException($"Unknown tool: '{name}'. Call tools/list for the tools this endpoint serves.", McpErrorCode.InvalidParams);
        }

        await EnsureSessionAsync(request, agent, cancellationToken);

        var duplicateKeys = request.JsonRpcRequest?.Params is { } raw ? Schemas.DuplicateKeys.Find(raw) : [];
        var call = builder.ForTool(agent, request.Server.SessionId, tool, request.Params.Arguments, duplicateKeys, InvokeTool, request);
        var outcome = await pipeline.RunAsync(call, cancellationToken);
        // A tool that advertises an outputSchema to this caller gets its refusal as text only: official clients
        // validate structuredContent against that schema even on errors.
        return outcome.Refusal is { } refusal
            ? refusal.ToCallToolResult(structured: !shaper.Advertised.HasOutputSchema(tool, call.State.Policy, call.IsAction))
            : (CallToolResult)outcome.Result!;
    }

    /// <summary>
    /// Runs the tool with the arguments the guard judged: the caller's request as it came when it held no
    /// confirmation token, else a copy without it (the request itself is never changed).
    /// </summary>
    private static async ValueTask<Result> InvokeTool(GuardCall call, CancellationToken cancellationToken)
    {
        var request = (RequestContext<CallToolRequestParams>)call.Request!;
        if (call.ConfirmationToken is not null)
        {
            var original = request.Params!;
            request = new RequestContext<CallToolRequestParams>(request.Server, request.JsonRpcRequest, new CallToolRequestParams
            {
                Name = original.Name,
                Arguments = call.Arguments,
                Meta = original.Meta,
            })
            {
                Services = request.Services,
                MatchedPrimitive = request.MatchedPrimitive,
            };
        }

        return await call.Tool!.Invoker(request, cancellationToken);
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
}
