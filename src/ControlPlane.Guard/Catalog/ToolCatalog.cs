using System.Collections.Frozen;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Guard.Catalog;

/// <summary>
/// Every tool the control plane serves, from every tool server. Reads go to an immutable snapshot that is
/// replaced atomically when an upstream server's tools change, so lookups on the hot path stay lock-free
/// frozen-dictionary reads. Names on the aggregate endpoint are the tool's own name for in-process servers
/// marked unprefixed and <c>&lt;server&gt;__&lt;tool&gt;</c> for all others.
/// A server id may carry one registration for every tenant and one per tenant: a tenant with its own
/// registration of a server sees that one's tools in place of the global one's, and no tenant ever sees
/// another tenant's. Each tenant with registrations of its own gets a view of its own, built with the snapshot.
/// </summary>
public sealed class ToolCatalog
{
    public const string Separator = "__";

    private readonly Lock _writeLock = new();
    private Snapshot _current;

    public ToolCatalog(IEnumerable<ToolDescriptor> tools)
    {
        _current = new Snapshot([.. tools], []);
    }

    /// <summary>Raised after the tools changed, with the ids of the servers whose tools changed.</summary>
    public event Action<IReadOnlyList<string>>? Changed;

    /// <summary>Every tool of every registration (operators' view; agents go through a tenant's view).</summary>
    public IReadOnlyList<ToolDescriptor> Tools => Volatile.Read(ref _current).Tools;

    /// <summary>Every server id with at least one registration, global or for a tenant.</summary>
    public IReadOnlyList<string> ServerIds => Volatile.Read(ref _current).ServerIds;

    /// <summary>Whether any registration (global or a tenant's) carries this server id.</summary>
    public bool HasServer(string serverId) => Volatile.Read(ref _current).AllByServer.ContainsKey(serverId);

    /// <summary>Whether a tenant's agents are served this server: by a registration of their own or a global one.</summary>
    public bool Serves(string serverId, string tenantId) => Volatile.Read(ref _current).ViewOf(tenantId).ByServer.ContainsKey(serverId);

    /// <summary>
    /// Finds a tool by the name a client used on an endpoint: the aggregate one (scope null) or one server's,
    /// as <paramref name="tenantId"/>'s agents see it (null: the global registrations alone).
    /// </summary>
    public ToolDescriptor? Find(string? endpointServerId, string name, string? tenantId = null)
    {
        var view = Volatile.Read(ref _current).ViewOf(tenantId);
        if (endpointServerId is null) return view.ByPublicName.GetValueOrDefault(name);
        return view.ByServer.TryGetValue(endpointServerId, out var tools) ? tools.GetValueOrDefault(name) : null;
    }

    /// <summary>The tools an endpoint serves to a tenant's agents: all of them, or one server's.</summary>
    public IEnumerable<ToolDescriptor> ForEndpoint(string? endpointServerId, string tenantId)
    {
        var view = Volatile.Read(ref _current).ViewOf(tenantId);
        return endpointServerId is null
            ? view.Tools
            : view.ByServer.TryGetValue(endpointServerId, out var tools) ? tools.Values : [];
    }

    /// <summary>Every registration's tools on an endpoint, whichever tenant they serve (operators' view).</summary>
    public IEnumerable<ToolDescriptor> ForEndpoint(string? endpointServerId)
    {
        var snapshot = Volatile.Read(ref _current);
        return endpointServerId is null ? snapshot.Tools : snapshot.AllByServer.GetValueOrDefault(endpointServerId) ?? [];
    }

    /// <summary>The tools of exactly one registration: the global one (<paramref name="tenantId"/> null) or a tenant's.</summary>
    public IEnumerable<ToolDescriptor> ForRegistration(string serverId, string? tenantId) =>
        ForEndpoint(serverId).Where(t => t.ServerId == serverId && t.TenantId == tenantId);

    /// <summary>Replaces the tools of a server's global registration.</summary>
    public void SetServerTools(string serverId, IReadOnlyList<ToolDescriptor> tools) => SetServerTools(serverId, null, tools);

    /// <summary>
    /// Replaces one registration's tools with a new snapshot; the registration stays known even with no tools (an
    /// upstream still starting), so a tenant's own registration hides the global one from the start. Fails, leaving
    /// the catalog as it was, if a public name would clash with another server's tool in some tenant's view.
    /// </summary>
    public void SetServerTools(string serverId, string? tenantId, IReadOnlyList<ToolDescriptor> tools)
    {
        if (tools.Any(t => t.ServerId != serverId || t.TenantId != tenantId))
        {
            throw new ArgumentException($"Every tool must belong to server '{serverId}' registered for {tenantId ?? "every tenant"}.", nameof(tools));
        }

        Swap(current => new Snapshot(
            [.. current.Tools.Where(t => t.ServerId != serverId || t.TenantId != tenantId), .. tools],
            [.. current.Registrations, new Registration(serverId, tenantId)]), serverId);
    }

    /// <summary>Forgets a server's global registration and its tools.</summary>
    public void RemoveServer(string serverId) => RemoveRegistration(serverId, null);

    /// <summary>Forgets one registration of a server (global or a tenant's) and its tools; the others stay.</summary>
    public void RemoveRegistration(string serverId, string? tenantId) =>
        Swap(current => new Snapshot(
            [.. current.Tools.Where(t => t.ServerId != serverId || t.TenantId != tenantId)],
            [.. current.Registrations.Where(r => r != new Registration(serverId, tenantId))]), serverId);

    private void Swap(Func<Snapshot, Snapshot> change, string serverId)
    {
        lock (_writeLock)
        {
            Volatile.Write(ref _current, change(_current));
        }

        Changed?.Invoke([serverId]);
    }

    /// <summary>Describes in-process SDK tools as catalog entries.</summary>
    public static IEnumerable<ToolDescriptor> FromInProcessServer(string serverId, IEnumerable<McpServerTool> tools, bool unprefixed)
    {
        foreach (var tool in tools)
        {
            var protocolTool = tool.ProtocolTool;
            var publicName = unprefixed ? protocolTool.Name : serverId + Separator + protocolTool.Name;
            yield return new ToolDescriptor(serverId, protocolTool, ToolDescriptor.Classify(protocolTool), tool.InvokeAsync, publicName);
        }
    }

    private readonly record struct Registration(string ServerId, string? TenantId);

    private sealed class Snapshot
    {
        public Snapshot(List<ToolDescriptor> all, IEnumerable<Registration> known)
        {
            Tools = all;
            Registrations = [.. known.Concat(all.Select(t => new Registration(t.ServerId, t.TenantId))).Distinct()];
            ServerIds = [.. Registrations.Select(r => r.ServerId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
            AllByServer = ServerIds.ToFrozenDictionary(s => s, s => (IReadOnlyList<ToolDescriptor>)[.. all.Where(t => t.ServerId == s)], StringComparer.Ordinal);

            var globalServers = Registrations.Where(r => r.TenantId is null).Select(r => r.ServerId).ToHashSet(StringComparer.Ordinal);
            Global = new View("every tenant", [.. all.Where(t => t.TenantId is null)], globalServers);
            TenantViews = Registrations.Where(r => r.TenantId is not null).GroupBy(r => r.TenantId!, StringComparer.Ordinal).ToFrozenDictionary(
                g => g.Key,
                g =>
                {
                    // The tenant's own registrations replace the global ones of the same id, tools and all.
                    var own = g.Select(r => r.ServerId).ToHashSet(StringComparer.Ordinal);
                    return new View("tenant " + g.Key, [.. all.Where(t => t.TenantId == g.Key || (t.TenantId is null && !own.Contains(t.ServerId)))], [.. globalServers, .. own]);
                },
                StringComparer.Ordinal);
        }

        public IReadOnlyList<ToolDescriptor> Tools { get; }

        public IReadOnlyList<string> ServerIds { get; }

        /// <summary>Every registration, including those with no tools right now (an upstream still starting).</summary>
        public IReadOnlyList<Registration> Registrations { get; }

        public FrozenDictionary<string, IReadOnlyList<ToolDescriptor>> AllByServer { get; }

        public View Global { get; }

        public FrozenDictionary<string, View> TenantViews { get; }

        public View ViewOf(string? tenantId) => tenantId is not null && TenantViews.TryGetValue(tenantId, out var view) ? view : Global;
    }

    /// <summary>The tools one audience is served: the global registrations, or a tenant's with its own in place of the global ones.</summary>
    private sealed class View
    {
        public View(string audience, List<ToolDescriptor> tools, IEnumerable<string> servers)
        {
            var duplicate = tools.GroupBy(t => t.PublicName, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
            {
                throw new InvalidOperationException(
                    $"Two tools are exposed as '{duplicate.Key}' to {audience} ({string.Join(", ", duplicate.Select(t => t.ServerId + "/" + t.ToolName))}). " +
                    "Rename one, or serve its server with prefixed names.");
            }

            Tools = tools;
            ByPublicName = tools.ToFrozenDictionary(t => t.PublicName, StringComparer.Ordinal);
            var byServer = tools.GroupBy(t => t.ServerId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.ToFrozenDictionary(t => t.ToolName, StringComparer.Ordinal), StringComparer.Ordinal);
            foreach (var server in servers) byServer.TryAdd(server, FrozenDictionary<string, ToolDescriptor>.Empty);
            ByServer = byServer.ToFrozenDictionary(StringComparer.Ordinal);
        }

        public IReadOnlyList<ToolDescriptor> Tools { get; }

        public FrozenDictionary<string, ToolDescriptor> ByPublicName { get; }

        public FrozenDictionary<string, FrozenDictionary<string, ToolDescriptor>> ByServer { get; }
    }
}
