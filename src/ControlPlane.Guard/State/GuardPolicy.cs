using System.Collections.Frozen;
using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Schemas;
using ControlPlane.GuardState;

namespace ControlPlane.Guard.State;

/// <summary>
/// Tool policy as the hot path reads it: which servers are read-write for which tenant, classification
/// overrides, and compiled schema overrides. Built once per guard state version.
/// </summary>
public sealed class GuardPolicy
{
    private readonly FrozenSet<string> _readWrite;
    private readonly FrozenDictionary<string, bool> _isAction;
    private readonly FrozenDictionary<string, ArgumentSchema?> _schemas;
    private readonly FrozenDictionary<string, ControlPlane.RateLimits.RateLimitSetting> _rateLimits;
    private readonly FrozenDictionary<string, ControlPlane.Policy.ProjectionSetting> _projections;

    public GuardPolicy(GuardStateSnapshot snapshot)
    {
        _readWrite = (snapshot.ServerModes ?? []).Where(m => m.ReadWrite).Select(m => m.Key).ToFrozenSet(StringComparer.Ordinal);
        _isAction = (snapshot.ClassificationOverrides ?? []).ToFrozenDictionary(o => o.Key, o => o.IsAction, StringComparer.Ordinal);
        _schemas = (snapshot.SchemaOverrides ?? []).ToFrozenDictionary(o => o.Key, o => TryCompile(o.SchemaJson), StringComparer.Ordinal);
        _rateLimits = (snapshot.RateLimits ?? []).ToFrozenDictionary(r => r.Key, StringComparer.Ordinal);
        _projections = (snapshot.Projections ?? []).ToFrozenDictionary(p => p.Key, StringComparer.Ordinal);
    }

    public static GuardPolicy Empty { get; } = new(GuardStateSnapshot.Empty);

    /// <summary>Read-only first: a server is read-write for a tenant only once an operator said so.</summary>
    public bool IsReadWrite(string tenantId, string serverId) =>
        _readWrite.Count > 0 && _readWrite.Contains(tenantId + "|" + serverId);

    /// <summary>The tool's classification for this tenant: a tenant override, else a global one, else its own.</summary>
    public bool IsAction(ToolDescriptor tool, string tenantId)
    {
        if (_isAction.Count == 0) return tool.IsAction;
        if (_isAction.TryGetValue($"{tool.ServerId}|{tool.ToolName}|{tenantId}", out var forTenant)) return forTenant;
        return _isAction.TryGetValue($"{tool.ServerId}|{tool.ToolName}", out var global) ? global : tool.IsAction;
    }

    /// <summary>
    /// Operator schema overrides that apply to this call (global and tenant), each in addition to the tool's
    /// own schema. A null entry is an override that would not compile: the guard fails closed on it.
    /// </summary>
    public IEnumerable<ArgumentSchema?> SchemaOverrides(ToolDescriptor tool, string tenantId)
    {
        if (_schemas.Count == 0) yield break;
        if (_schemas.TryGetValue($"{tool.ServerId}|{tool.ToolName}", out var global)) yield return global;
        if (_schemas.TryGetValue($"{tool.ServerId}|{tool.ToolName}|{tenantId}", out var forTenant)) yield return forTenant;
    }

    /// <summary>A tenant's limit for one bucket: the subject's own, else the tenant's for every subject of that scope.</summary>
    public ControlPlane.RateLimits.RateLimitSetting? RateLimit(string tenantId, string scope, string? subject)
    {
        if (_rateLimits.Count == 0) return null;
        if (subject is not null && _rateLimits.TryGetValue($"{tenantId}|{scope}|{subject}", out var own)) return own;
        return _rateLimits.GetValueOrDefault($"{tenantId}|{scope}|*");
    }

    public IEnumerable<ControlPlane.RateLimits.RateLimitSetting> RateLimits(string tenantId) =>
        _rateLimits.Values.Where(r => r.TenantId == tenantId);

    public ControlPlane.Policy.ProjectionSetting? Projection(ToolDescriptor tool) =>
        _projections.Count == 0 ? null : _projections.GetValueOrDefault($"{tool.ServerId}|{tool.ToolName}");

    private static ArgumentSchema? TryCompile(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return ArgumentSchema.Compile(document.RootElement.Clone());
        }
        catch (Exception ex) when (ex is JsonException or Json.Schema.JsonSchemaException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            return null;
        }
    }
}
