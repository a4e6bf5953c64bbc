using System.Collections.Concurrent;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Limits;
using ControlPlane.Guard.State;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Upstreams;

/// <summary>
/// Upstream resources and prompts, thin adapters onto the one guard pipeline: reads, subscriptions and prompts pass
/// the same stages as a tool call (the token needs <c>server:&lt;id&gt;:read</c>; kill switches, rate limits, audit,
/// downstream protection and redaction apply), and a tenant sees only its own and global upstreams. Refusals are
/// JSON-RPC errors whose message starts with the refusal code and whose data is the refusal (no result shape carries them).
/// On /mcp prompts are named <c>&lt;server&gt;__&lt;prompt&gt;</c>; resource URIs and URI templates are kept and routed to the
/// server that listed them (a URI made from a template goes to the server whose template's fixed prefix it has, the longest
/// such prefix winning). Subscriptions are reads too: <c>resources/subscribe</c> is guarded and audited like a read, and an
/// update goes only to the sessions that subscribed to that URI, while their token is valid and no kill switch covers them.
/// </summary>
public sealed class UpstreamReadGateway(
    UpstreamGateway upstreams,
    AgentTokenValidator tokens,
    GuardStateCache guardState,
    GuardCallBuilder builder,
    GuardPipeline pipeline,
    CallAuditor auditor,
    TimeProvider time)
{
    public const string ResourceReadKind = GuardRequestKinds.ResourceRead;
    public const string PromptGetKind = GuardRequestKinds.PromptGet;
    public const string ResourceSubscribeKind = GuardRequestKinds.ResourceSubscribe;
    public const string ResourceUnsubscribeKind = GuardRequestKinds.ResourceUnsubscribe;

    /// <summary>Which server listed a resource URI, per tenant (two tenants' registrations of one id may list the same URIs).</summary>
    private readonly ConcurrentDictionary<(string TenantId, string Uri), string> _serverOfUri = new();

    /// <summary>The fixed prefix of each URI template a server listed, per tenant, so URIs made from it can be routed.</summary>
    private readonly ConcurrentDictionary<(string TenantId, string Prefix), string> _serverOfTemplatePrefix = new();

    /// <summary>
    /// Open sessions by id, as the transport runs them: updates are sent on these, because the <see cref="McpServer"/>
    /// a request handler gets is bound to that request's own response stream.
    /// </summary>
    private readonly ConcurrentDictionary<string, McpServer> _sessions = new(StringComparer.Ordinal);

    public async ValueTask<ListResourcesResult> ListResourcesAsync(string? endpointServerId, RequestContext<ListResourcesRequestParams> request, CancellationToken cancellationToken)
    {
        var result = new ListResourcesResult();
        var agent = AgentOf(request);
        foreach (var (connection, client) in Readable(agent, endpointServerId, c => c.ServerCapabilities.Resources is not null))
        {
            var page = new ListResourcesRequestParams();
            do
            {
                var listed = await client.ListResourcesAsync(page, cancellationToken);
                foreach (var resource in listed.Resources)
                {
                    _serverOfUri[(agent.TenantId, resource.Uri)] = connection.Id;
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
        var serverId = endpointServerId ?? ServerOf(AgentOf(request).TenantId, uri);
        return await GuardedReadAsync(request, GuardRequestKind.ResourceRead, serverId, uri, null,
            (_, client, ct) => client.ReadResourceAsync(new ReadResourceRequestParams { Uri = uri }, ct), cancellationToken);
    }

    public async ValueTask<ListResourceTemplatesResult> ListResourceTemplatesAsync(string? endpointServerId, RequestContext<ListResourceTemplatesRequestParams> request,
        CancellationToken cancellationToken)
    {
        var agent = AgentOf(request);
        var result = new ListResourceTemplatesResult();
        foreach (var (connection, client) in Readable(agent, endpointServerId, c => c.ServerCapabilities.Resources is not null))
        {
            var page = new ListResourceTemplatesRequestParams();
            do
            {
                ListResourceTemplatesResult listed;
                try
                {
                    listed = await client.ListResourceTemplatesAsync(page, cancellationToken);
                }
                catch (McpProtocolException ex) when (ex.ErrorCode == McpErrorCode.MethodNotFound)
                {
                    break; // A server with resources but no templates.
                }

                foreach (var template in listed.ResourceTemplates)
                {
                    var brace = template.UriTemplate.IndexOf('{', StringComparison.Ordinal);
                    var prefix = brace < 0 ? template.UriTemplate : template.UriTemplate[..brace];
                    if (prefix.Length > 0) _serverOfTemplatePrefix[(agent.TenantId, prefix)] = connection.Id;
                    result.ResourceTemplates.Add(template);
                }

                page = new ListResourceTemplatesRequestParams { Cursor = listed.NextCursor };
            }
            while (page.Cursor is not null);
        }

        return result;
    }

    public async ValueTask<EmptyResult> SubscribeAsync(string? endpointServerId, RequestContext<SubscribeRequestParams> request, CancellationToken cancellationToken)
    {
        var uri = request.Params?.Uri ?? throw new McpProtocolException("resources/subscribe needs a uri.", McpErrorCode.InvalidParams);
        var agent = AgentOf(request);
        var sessionId = request.Server.SessionId ?? throw new McpProtocolException("resources/subscribe needs a stateful session.", McpErrorCode.InvalidRequest);
        var session = _sessions.GetValueOrDefault(sessionId) ?? request.Server;
        var serverId = endpointServerId ?? ServerOf(agent.TenantId, uri);
        var identity = new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, sessionId, serverId, uri);
        return await GuardedReadAsync(request, GuardRequestKind.ResourceSubscribe, serverId, uri, null, async (connection, client, ct) =>
        {
            await connection.SubscribeAsync(client, sessionId, session, uri, () => MayRead(agent, identity), ct);
            return new EmptyResult();
        }, cancellationToken);
    }

    /// <summary>Ends the session's own subscription. Never refused (it only stops updates), but audited like the subscription.</summary>
    public async ValueTask<EmptyResult> UnsubscribeAsync(string? endpointServerId, RequestContext<UnsubscribeRequestParams> request, CancellationToken cancellationToken)
    {
        var uri = request.Params?.Uri ?? throw new McpProtocolException("resources/unsubscribe needs a uri.", McpErrorCode.InvalidParams);
        var agent = AgentOf(request);
        var started = time.GetTimestamp();
        var sessionId = request.Server.SessionId ?? "";
        var connection = upstreams.ServingTenant(agent.TenantId).FirstOrDefault(c => (endpointServerId is null || c.Id == endpointServerId) && c.IsSubscribed(sessionId, uri));
        if (connection is not null)
        {
            await connection.UnsubscribeAsync(sessionId, uri, cancellationToken);
            var identity = new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, request.Server.SessionId, connection.Id, uri);
            await CallAuditor.TryRecordAsync(auditor.RecordReadAsync(ResourceUnsubscribeKind, identity, agent.Token.Id, uri, null, "success", time.GetElapsedTime(started).TotalMilliseconds));
        }

        return new EmptyResult();
    }

    /// <summary>A session opened: updates for its subscriptions are sent on it.</summary>
    public void Opened(McpServer session)
    {
        if (session.SessionId is { } id) _sessions[id] = session;
    }

    /// <summary>Drops the subscriptions of a session that closed.</summary>
    public void Forget(McpServer session)
    {
        if (session.SessionId is not { } id) return;
        _sessions.TryRemove(id, out _);
        foreach (var connection in upstreams.Connections) connection.Forget(id);
    }

    private bool MayRead(AgentIdentity agent, CallIdentity identity) =>
        tokens.StatusOf(agent.Token) == TokenStatus.Valid && guardState.Kills.Match(identity) is null;

    /// <summary>The server that listed a URI for this tenant, or whose template's fixed prefix it has (the longest one).</summary>
    private string ServerOf(string tenantId, string uri)
    {
        if (_serverOfUri.TryGetValue((tenantId, uri), out var owner)) return owner;
        var byTemplate = _serverOfTemplatePrefix
            .Where(kv => kv.Key.TenantId == tenantId && uri.StartsWith(kv.Key.Prefix, StringComparison.Ordinal))
            .MaxBy(kv => kv.Key.Prefix.Length);
        return byTemplate.Value
            ?? throw new McpProtocolException($"Unknown resource '{uri}'. List resources (or resource templates) first, or use /mcp/<server>.", McpErrorCode.ResourceNotFound);
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
        var (serverId, own) = PromptTarget(endpointServerId, name);
        var arguments = request.Params.Arguments;
        return await GuardedReadAsync(request, GuardRequestKind.PromptGet, serverId, own, arguments,
            (_, client, ct) => client.GetPromptAsync(new GetPromptRequestParams { Name = own, Arguments = arguments }, ct), cancellationToken);
    }

    /// <summary>
    /// completion/complete of a prompt's or a resource template's argument, routed to the server that serves the prompt
    /// or template and guarded like a read (the argument's value is audited, redacted and hashed like arguments).
    /// </summary>
    public async ValueTask<CompleteResult> CompleteAsync(string? endpointServerId, RequestContext<CompleteRequestParams> request, CancellationToken cancellationToken)
    {
        var parameters = request.Params ?? throw new McpProtocolException("completion/complete needs params.", McpErrorCode.InvalidParams);
        var agent = AgentOf(request);
        string serverId, name;
        Reference reference;
        switch (parameters.Ref)
        {
            case PromptReference prompt:
                (serverId, name) = PromptTarget(endpointServerId, prompt.Name);
                reference = new PromptReference { Name = name, Title = prompt.Title };
                break;
            case ResourceTemplateReference { Uri: { } uri } template:
                (serverId, name, reference) = (endpointServerId ?? ServerOf(agent.TenantId, uri), uri, template);
                break;
            default:
                throw new McpProtocolException("completion/complete needs a ref/prompt or ref/resource reference.", McpErrorCode.InvalidParams);
        }

        var arguments = new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal)
        {
            [parameters.Argument.Name] = System.Text.Json.JsonSerializer.SerializeToElement(parameters.Argument.Value),
        };
        var forwarded = new CompleteRequestParams { Ref = reference, Argument = parameters.Argument, Context = parameters.Context };
        return await GuardedReadAsync(request, GuardRequestKind.Completion, serverId, name, arguments,
            (_, client, ct) => client.CompleteAsync(forwarded, ct), cancellationToken);
    }

    /// <summary>The server and its own name of a prompt: named on its server's endpoint, <c>server__prompt</c> on /mcp.</summary>
    private static (string ServerId, string Own) PromptTarget(string? endpointServerId, string name) =>
        endpointServerId is not null ? (endpointServerId, name)
        : name.IndexOf(Guard.Catalog.ToolCatalog.Separator, StringComparison.Ordinal) is var at and > 0
            ? (name[..at], name[(at + Guard.Catalog.ToolCatalog.Separator.Length)..])
            : throw new McpProtocolException($"Unknown prompt '{name}'. Prompts on /mcp are named <server>__<prompt>.", McpErrorCode.InvalidParams);

    /// <summary>The upstreams this agent may read on this endpoint, running now and offering the feature.</summary>
    private IEnumerable<(UpstreamConnection Connection, McpClient Client)> Readable(AgentIdentity agent, string? endpointServerId, Func<McpClient, bool> offers)
    {
        if (tokens.StatusOf(agent.Token) != TokenStatus.Valid) yield break;
        foreach (var connection in upstreams.ServingTenant(agent.TenantId))
        {
            if (endpointServerId is not null && connection.Id != endpointServerId) continue;
            if (!agent.Grant.Allows(connection.Id, "*", isAction: false)) continue;
            if (guardState.Kills.Match(new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, null, connection.Id, "*")) is not null) continue;
            if (connection.Client is { } client && offers(client)) yield return (connection, client);
        }
    }

    /// <summary>
    /// A resources/read, resources/subscribe or prompts/get through the one guard pipeline: kill switches (in flight
    /// too), token, scope, rate limits, audit under the read policy, downstream protection and redaction of what comes
    /// back. A refusal is a JSON-RPC error whose message starts with its code and whose data is the refusal's JSON.
    /// </summary>
    private async ValueTask<T> GuardedReadAsync<TParams, T>(RequestContext<TParams> request, GuardRequestKind kind, string serverId, string name,
        IDictionary<string, System.Text.Json.JsonElement>? arguments, Func<UpstreamConnection, McpClient, CancellationToken, ValueTask<T>> read, CancellationToken cancellationToken)
        where T : Result
    {
        var agent = AgentOf(request);
        // The tenant's own registration of the id, else the global one; never another tenant's.
        var connection = upstreams.Resolve(serverId, agent.TenantId);
        if (connection is null)
        {
            await CallAuditor.TryRecordAsync(auditor.RecordUnroutableAsync(kind.WireName(), agent, request.Server.SessionId, serverId, name, CallAuditor.InvalidRequestCode, arguments));
            throw new McpProtocolException($"Unknown server '{serverId}'.", McpErrorCode.InvalidParams);
        }

        var target = GuardTarget.ForServer(kind, connection.Id, connection.Definition.TenantId, name, name);
        var call = builder.ForServer(kind, agent, request.Server.SessionId, target, arguments,
            static async (call, ct) =>
            {
                var (connection, read) = ((UpstreamConnection, Func<UpstreamConnection, McpClient, CancellationToken, ValueTask<T>>))call.Request!;
                // A server between processes counts against its circuit like any failure to answer.
                var client = connection.Client ?? throw new DownstreamUnavailableException(connection.Id, "it is starting or restarting", TimeSpan.FromSeconds(5), new InvalidOperationException("no client"));
                return await read(connection, client, ct);
            },
            (connection, read));

        GuardOutcome outcome;
        try
        {
            outcome = await pipeline.RunAsync(call, cancellationToken);
        }
        catch (Exception ex) when (ex is not (McpProtocolException or OperationCanceledException))
        {
            throw new McpProtocolException($"{RefusalCodes.UpstreamUnavailable}: server '{serverId}' did not answer ({ex.GetType().Name}); retry shortly.", McpErrorCode.InternalError);
        }

        if (outcome.Refusal is { } refusal) throw refusal.ToProtocolException();
        return (T)outcome.Result!;
    }

    private static AgentIdentity AgentOf<T>(RequestContext<T> request) =>
        request.User?.Identity as AgentIdentity
        ?? throw new McpProtocolException("The request is not authenticated as an agent.", McpErrorCode.InvalidRequest);
}
