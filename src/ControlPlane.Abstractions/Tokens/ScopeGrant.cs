using System.Collections.Frozen;

namespace ControlPlane.Tokens;

/// <summary>
/// A token's scopes, parsed once into lookups: which servers' read tools, which servers' action tools,
/// and which single tools it may call. No scopes, nothing callable.
/// </summary>
public sealed class ScopeGrant
{
    private readonly FrozenSet<string> _readServers;
    private readonly FrozenSet<string> _writeServers;
    private readonly FrozenSet<string> _tools;

    private ScopeGrant(IEnumerable<string> readServers, IEnumerable<string> writeServers, IEnumerable<string> tools)
    {
        _readServers = readServers.ToFrozenSet(StringComparer.Ordinal);
        _writeServers = writeServers.ToFrozenSet(StringComparer.Ordinal);
        _tools = tools.ToFrozenSet(StringComparer.Ordinal);
    }

    public static ScopeGrant Parse(IEnumerable<string> scopes)
    {
        List<string> read = [], write = [], tools = [];
        foreach (var scope in scopes)
        {
            if (!Scopes.IsValid(scope)) continue; // minted tokens are validated; anything else grants nothing
            if (scope.StartsWith("tool:", StringComparison.Ordinal)) tools.Add(scope[5..]);
            else if (scope.EndsWith(":read", StringComparison.Ordinal)) read.Add(scope[7..^5]);
            else write.Add(scope[7..^6]);
        }

        return new ScopeGrant(read, write, tools);
    }

    /// <summary>
    /// Whether the scopes cover a tool: <c>server:&lt;id&gt;:read</c> covers its read tools,
    /// <c>server:&lt;id&gt;:write</c> its action tools, <c>tool:&lt;id&gt;/&lt;name&gt;</c> that one tool.
    /// </summary>
    public bool Allows(string serverId, string toolName, bool isAction) =>
        (isAction ? _writeServers.Contains(serverId) : _readServers.Contains(serverId))
        || (_tools.Count > 0 && _tools.Contains(serverId + "/" + toolName));
}
