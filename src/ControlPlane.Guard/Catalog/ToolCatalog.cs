using System.Collections.Frozen;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Guard.Catalog;

/// <summary>
/// Every tool the control plane serves, from every tool server. Reads go to an immutable snapshot that is
/// replaced atomically when an upstream server's tools change, so lookups on the hot path stay lock-free
/// frozen-dictionary reads. Names on the aggregate endpoint are the tool's own name for in-process servers
/// marked unprefixed and <c>&lt;server&gt;__&lt;tool&gt;</c> for all others.
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

    public IReadOnlyList<ToolDescriptor> Tools => Volatile.Read(ref _current).Tools;

    public IReadOnlyList<string> ServerIds => Volatile.Read(ref _current).ServerIds;

    public bool HasServer(string serverId) => Volatile.Read(ref _current).ByServer.ContainsKey(serverId);

    /// <summary>Finds a tool by the name a client used on an endpoint: the aggregate one (scope null) or one server's.</summary>
    public ToolDescriptor? Find(string? endpointServerId, string name)
    {
        var snapshot = Volatile.Read(ref _current);
        if (endpointServerId is null) return snapshot.ByPublicName.GetValueOrDefault(name);
        return snapshot.ByServer.TryGetValue(endpointServerId, out var tools) ? tools.GetValueOrDefault(name) : null;
    }

    /// <summary>The tools an endpoint serves: all of them, or one server's.</summary>
    public IEnumerable<ToolDescriptor> ForEndpoint(string? endpointServerId)
    {
        var snapshot = Volatile.Read(ref _current);
        return endpointServerId is null
            ? snapshot.Tools
            : snapshot.ByServer.TryGetValue(endpointServerId, out var tools) ? tools.Values : [];
    }

    /// <summary>
    /// Replaces one server's tools with a new snapshot; the server stays known even with no tools (an upstream
    /// still starting). Fails, leaving the catalog as it was, if a public name would clash with another server's tool.
    /// </summary>
    public void SetServerTools(string serverId, IReadOnlyList<ToolDescriptor> tools)
    {
        if (tools.Any(t => t.ServerId != serverId)) throw new ArgumentException($"Every tool must belong to server '{serverId}'.", nameof(tools));
        Swap(current => new Snapshot([.. current.Tools.Where(t => t.ServerId != serverId), .. tools], [.. current.EmptyServers, serverId]), serverId);
    }

    /// <summary>Forgets a server and its tools.</summary>
    public void RemoveServer(string serverId) =>
        Swap(current => new Snapshot([.. current.Tools.Where(t => t.ServerId != serverId)], [.. current.EmptyServers.Where(s => s != serverId)]), serverId);

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

    private sealed class Snapshot
    {
        public Snapshot(List<ToolDescriptor> all, IEnumerable<string> knownServers)
        {
            var duplicate = all.GroupBy(t => t.PublicName, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
            {
                throw new InvalidOperationException(
                    $"Two tools are exposed as '{duplicate.Key}' ({string.Join(", ", duplicate.Select(t => t.ServerId + "/" + t.ToolName))}). " +
                    "Rename one, or serve its server with prefixed names.");
            }

            Tools = all;
            ByPublicName = all.ToFrozenDictionary(t => t.PublicName, StringComparer.Ordinal);
            var byServer = all.GroupBy(t => t.ServerId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.ToFrozenDictionary(t => t.ToolName, StringComparer.Ordinal), StringComparer.Ordinal);
            EmptyServers = [.. knownServers.Distinct(StringComparer.Ordinal).Where(s => !byServer.ContainsKey(s))];
            foreach (var server in EmptyServers) byServer[server] = FrozenDictionary<string, ToolDescriptor>.Empty;
            ByServer = byServer.ToFrozenDictionary(StringComparer.Ordinal);
            ServerIds = [.. ByServer.Keys.Order(StringComparer.Ordinal)];
        }

        public IReadOnlyList<ToolDescriptor> Tools { get; }

        public IReadOnlyList<string> ServerIds { get; }

        /// <summary>Servers known to the catalog that have no tools right now.</summary>
        public IReadOnlyList<string> EmptyServers { get; }

        public FrozenDictionary<string, ToolDescriptor> ByPublicName { get; }

        public FrozenDictionary<string, FrozenDictionary<string, ToolDescriptor>> ByServer { get; }
    }
}
