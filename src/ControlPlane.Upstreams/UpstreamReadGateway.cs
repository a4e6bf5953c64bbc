using System.Collections.Concurrent;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Upstreams;

/// <summary>
/// Upstream resources and prompts, served as read operations: the token needs <c>server:&lt;id&gt;:read</c>, kill
/// switches apply, a tenant sees only its own and global upstreams, and every read is audited. Refusals are
/// JSON-RPC errors whose message starts with the refusal code (there is no result shape to carry them).
/// On /mcp prompts are named <c>&lt;server&gt;__&lt;prompt&gt;</c>; resource URIs are kept and routed to the server that listed them.
/// </summary>
public sealed class UpstreamReadGateway(UpstreamGateway upstreams, AgentTokenValidator tokens, GuardStateCache guardState, CallAuditor auditor, TimeProvider time)
{
    public const string ResourceReadKind = "resources/read";
    public const string PromptGetKind = "prompts/get";

    private readonly ConcurrentDictionary<string, string> _serverOfUri = new(StringComparer.Ordinal);

    public async ValueTask<ListResourcesResult> ListResourcesAsync(string? endpointServerId, RequestContext<ListResourcesRequestParams> request, CancellationToken cancellationToken)
    {
        var result = new ListResourcesResult();
        foreach (var (connection, client) in Readable(AgentOf(request), endpointServerId, c => c.ServerCapabilities.Resources is not null))
        {
            var page = new ListResourcesRequestParams();
            do
            {
                var listed = await client.ListResourcesAsync(page, cancellationToken);
                foreach (var resource in listed.Resources)
                {
                    _serverOfUri[resource.Uri] = connection.Id;
                    result.Resources.Add(resource);
                }

                page = new ListResourcesRequestParams { Cursor = listed.NextCursor };
            }
            while (page.Cursor is not null);
        }

        return result;
    }

    public async ValueTask<ReadResourceResult> ReadResourceAsync(string? endpointServerId, RequestContext<ReadResourceRequestParams> request, CancellationToken cancellationToken)
    {
        var uri = request.Params?.Uri ?? throw new McpProtocolException("resources/read needs a uri.", McpErrorCode.InvalidParams);
        var serverId = endpointServerId ?? (_serverOfUri.TryGetValue(uri, out var owner) ? owner
            : throw new McpProtocolException($"Unknown resource '{uri}'. List resources first, or read it on /mcp/<server>.", McpErrorCode.ResourceNotFound));
        return await GuardedReadAsync(request, serverId, ResourceReadKind, uri,
            (client, ct) => client.ReadResourceAsync(new ReadResourceRequestParams { Uri = uri }, ct), cancellationToken);
    }

    public async ValueTask<ListPromptsResult> ListPromptsAsync(string? endpointServerId, RequestContext<ListPromptsRequestParams> request, CancellationToken cancellationToken)
    {
        var result = new ListPromptsResult();
        foreach (var (connection, client) in Readable(AgentOf(request), endpointServerId, c => c.ServerCapabilities.Prompts is not null))
        {
            var page = new ListPromptsRequestParams();
            do
            {
                var listed = await client.ListPromptsAsync(page, cancellationToken);
                foreach (var prompt in listed.Prompts)
                {
                    result.Prompts.Add(endpointServerId is null
                        ? new Prompt { Name = connection.Id + Guard.Catalog.ToolCatalog.Separator + prompt.Name, Title = prompt.Title, Description = prompt.Description, Arguments = prompt.Arguments }
                        : prompt);
                }

                page = new ListPromptsRequestParams { Cursor = listed.NextCursor };
            }
            while (page.Cursor is not null);
        }

        return result;
    }

    public async ValueTask<GetPromptResult> GetPromptAsync(string? endpointServerId, RequestContext<GetPromptRequestParams> request, CancellationToken cancellationToken)
    {
        var name = request.Params?.Name ?? throw new McpProtocolException("prompts/get needs a name.", McpErrorCode.InvalidParams);
        var (serverId, own) = endpointServerId is not null ? (endpointServerId, name)
            : name.IndexOf(Guard.Catalog.ToolCatalog.Separator, StringComparison.Ordinal) is var at and > 0
                ? (name[..at], name[(at + Guard.Catalog.ToolCatalog.Separator.Length)..])
                : throw new McpProtocolException($"Unknown prompt '{name}'. Prompts on /mcp are named <server>__<prompt>.", McpErrorCode.InvalidParams);
        var arguments = request.Params.Arguments;
        return await GuardedReadAsync(request, serverId, PromptGetKind, own,
            (client, ct) => client.GetPromptAsync(new GetPromptRequestParams { Name = own, Arguments = arguments }, ct), cancellationToken);
    }

    /// <summary>The upstreams this agent may read on this endpoint, running now and offering the feature.</summary>
    private IEnumerable<(UpstreamConnection Connection, McpClient Client)> Readable(AgentIdentity agent, string? endpointServerId, Func<McpClient, bool> offers)
    {
        if (tokens.StatusOf(agent.Token) != TokenStatus.Valid) yield break;
        foreach (var connection in upstreams.Connections)
        {
            if (endpointServerId is not null && connection.Id != endpointServerId) continue;
            if (connection.Definition.TenantId is { } owner && owner != agent.TenantId) continue;
            if (!agent.Grant.Allows(connection.Id, "*", isAction: false)) continue;
            if (guardState.Kills.Match(new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, null, connection.Id, "*")) is not null) continue;
            if (connection.Client is { } client && offers(client)) yield return (connection, client);
        }
    }

    private async ValueTask<T> GuardedReadAsync<TParams, T>(RequestContext<TParams> request, string serverId, string kind, string name,
        Func<McpClient, CancellationToken, ValueTask<T>> read, CancellationToken cancellationToken)
    {
        var agent = AgentOf(request);
        var identity = new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, request.Server.SessionId, serverId, name);
        var started = time.GetTimestamp();
        var connection = upstreams.Connections.FirstOrDefault(c => c.Id == serverId && (c.Definition.TenantId is null || c.Definition.TenantId == agent.TenantId))
            ?? throw new McpProtocolException($"Unknown server '{serverId}'.", McpErrorCode.InvalidParams);

        string? refusal = null;
        string message = "";
        if (tokens.StatusOf(agent.Token) != TokenStatus.Valid)
        {
            (refusal, message) = (RefusalCodes.Unauthenticated, "The token is expired or revoked; get a new one.");
        }
        else if (guardState.Kills.Match(identity) is { } killSwitch)
        {
            (refusal, message) = (RefusalCodes.Killed, $"A {killSwitch.Target.Scope.ToWireName()} kill switch covers this: {killSwitch.Reason}");
        }
        else if (!agent.Grant.Allows(serverId, name, isAction: false))
        {
            (refusal, message) = (RefusalCodes.ForbiddenScope, $"This token may not read from '{serverId}'; it needs the scope 'server:{serverId}:read'.");
        }
        else if (connection.Client is null)
        {
            (refusal, message) = (RefusalCodes.UpstreamUnavailable, $"Server '{serverId}' is starting or restarting; retry in a few seconds.");
        }

        if (refusal is not null)
        {
            await TryAuditAsync(auditor.RecordReadAsync(kind, identity, agent.Token.Id, name, refusal, "refused", time.GetElapsedTime(started).TotalMilliseconds));
            throw new McpProtocolException($"{refusal}: {message}", McpErrorCode.InvalidRequest);
        }

        try
        {
            var result = await read(connection.Client!, cancellationToken);
            await TryAuditAsync(auditor.RecordReadAsync(kind, identity, agent.Token.Id, name, null, "success", time.GetElapsedTime(started).TotalMilliseconds));
            return result;
        }
        catch (Exception ex)
        {
            await TryAuditAsync(auditor.RecordReadAsync(kind, identity, agent.Token.Id, name, null, "error", time.GetElapsedTime(started).TotalMilliseconds, ex.GetType().Name));
            if (ex is McpProtocolException or OperationCanceledException) throw;
            throw new McpProtocolException($"{RefusalCodes.UpstreamUnavailable}: server '{serverId}' did not answer ({ex.GetType().Name}); retry shortly.", McpErrorCode.InternalError);
        }
    }

    /// <summary>Reads are audited like read tool calls under the fail-open read policy: the read is not withheld if the record fails.</summary>
    private static async Task TryAuditAsync(Task record)
    {
        try
        {
            await record;
        }
        catch (AuditUnavailableException)
        {
        }
    }

    private static AgentIdentity AgentOf<T>(RequestContext<T> request) =>
        request.User?.Identity as AgentIdentity
        ?? throw new McpProtocolException("The request is not authenticated as an agent.", McpErrorCode.InvalidRequest);
}
