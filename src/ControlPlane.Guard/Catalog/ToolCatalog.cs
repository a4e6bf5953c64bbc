using System.Collections.Frozen;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Guard.Catalog;

/// <summary>
/// Every tool the control plane serves, from every tool server. Immutable once built: lookups on the
/// hot path are frozen-dictionary reads. Names on the aggregate endpoint are the tool's own name for
/// in-process servers marked unprefixed and <c>&lt;server&gt;__&lt;tool&gt;</c> for all others.
/// </summary>
public sealed class ToolCatalog
{
    public const string Separator = "__";

    private readonly FrozenDictionary<string, ToolDescriptor> _byPublicName;
    private readonly FrozenDictionary<string, FrozenDictionary<string, ToolDescriptor>> _byServer;

    public ToolCatalog(IEnumerable<ToolDescriptor> tools)
    {
        var all = tools.ToList();
        var duplicate = all.GroupBy(t => t.PublicName, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new InvalidOperationException(
                $"Two tools are exposed as '{duplicate.Key}' ({string.Join(", ", duplicate.Select(t => t.ServerId + "/" + t.ToolName))}). " +
                "Rename one, or serve its server with prefixed names.");
        }

        Tools = all;
        _byPublicName = all.ToFrozenDictionary(t => t.PublicName, StringComparer.Ordinal);
        _byServer = all.GroupBy(t => t.ServerId, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.ToFrozenDictionary(t => t.ToolName, StringComparer.Ordinal), StringComparer.Ordinal);
        ServerIds = [.. _byServer.Keys.Order(StringComparer.Ordinal)];
    }

    public IReadOnlyList<ToolDescriptor> Tools { get; }

    public IReadOnlyList<string> ServerIds { get; }

    public bool HasServer(string serverId) => _byServer.ContainsKey(serverId);

    /// <summary>Finds a tool by the name a client used on an endpoint: the aggregate one (scope null) or one server's.</summary>
    public ToolDescriptor? Find(string? endpointServerId, string name)
    {
        if (endpointServerId is null) return _byPublicName.GetValueOrDefault(name);
        return _byServer.TryGetValue(endpointServerId, out var tools) ? tools.GetValueOrDefault(name) : null;
    }

    /// <summary>The tools an endpoint serves: all of them, or one server's.</summary>
    public IEnumerable<ToolDescriptor> ForEndpoint(string? endpointServerId) =>
        endpointServerId is null
            ? Tools
            : _byServer.TryGetValue(endpointServerId, out var tools) ? tools.Values : [];

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
}
