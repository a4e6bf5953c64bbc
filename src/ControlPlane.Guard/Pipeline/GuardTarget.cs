using ControlPlane.Guard.Catalog;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// What a guarded request reaches: a tool, or a resource, prompt or completion of one server. Kill switches, scopes,
/// rate limits and downstream protection are keyed on it the same way whatever the kind.
/// </summary>
public sealed class GuardTarget
{
    private GuardTarget(string serverId, string name, string key, string publicName, string? registrationTenantId, ToolDescriptor? tool)
    {
        ServerId = serverId;
        Name = name;
        Key = key;
        PublicName = publicName;
        RegistrationTenantId = registrationTenantId;
        Tool = tool;
    }

    /// <summary>The server that serves it.</summary>
    public string ServerId { get; }

    /// <summary>The tool's or prompt's own name, or the resource's URI: what a tool-level kill switch and the audit name.</summary>
    public string Name { get; }

    /// <summary>
    /// How rate limits, weights and redaction rules name it: <c>server/tool</c> for a tool, <c>server/method</c> for the
    /// other kinds (one bucket per server and method, not one per URI, which a caller could mint without end).
    /// </summary>
    public string Key { get; }

    /// <summary>The name the caller used, for messages.</summary>
    public string PublicName { get; }

    /// <summary>The tenant whose own registration of the server serves it (a circuit of its own); null for a global one.</summary>
    public string? RegistrationTenantId { get; }

    /// <summary>The tool, for a tools/call; null for the other kinds.</summary>
    public ToolDescriptor? Tool { get; }

    public static GuardTarget ForTool(ToolDescriptor tool) =>
        new(tool.ServerId, tool.ToolName, tool.Key, tool.PublicName, tool.TenantId, tool);

    public static GuardTarget ForServer(GuardRequestKind kind, string serverId, string? registrationTenantId, string name, string publicName) =>
        new(serverId, name, serverId + "/" + kind.WireName(), publicName, registrationTenantId, null);
}
