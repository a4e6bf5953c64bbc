using ControlPlane.Guard.Schemas;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Guard.Catalog;

/// <summary>Whether a tool only reads or can change something. Anything not declared read is an action.</summary>
public enum ToolClassification
{
    Action,
    Read,
}

/// <summary>Invokes a tool once the guard has allowed the call.</summary>
public delegate ValueTask<CallToolResult> ToolInvoker(RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken);

/// <summary>A tool as the guard sees it: where it lives, how it is classified, and how to call it.</summary>
public sealed class ToolDescriptor
{
    public ToolDescriptor(string serverId, Tool tool, ToolClassification classification, ToolInvoker invoker, string publicName)
    {
        ServerId = serverId;
        ToolName = tool.Name;
        Key = serverId + "/" + tool.Name;
        PublicName = publicName;
        Classification = classification;
        Invoker = invoker;
        OwnNameTool = tool;
        ProtocolTool = publicName == tool.Name ? tool : Clone(tool, publicName);
        _inputSchema = new Lazy<ArgumentSchema?>(() => CompileInputSchema(tool));
    }

    private readonly Lazy<ArgumentSchema?> _inputSchema;

    /// <summary>The tool's own input schema, compiled once and closed to unknown fields; null if it would not compile.</summary>
    public ArgumentSchema? InputSchema => _inputSchema.Value;

    /// <summary>The tool server this tool belongs to, e.g. <c>support-desk</c>.</summary>
    public string ServerId { get; }

    /// <summary>The only tenant that may see and call this tool (an upstream registered for one tenant); null for every tenant.</summary>
    public string? TenantId { get; init; }

    /// <summary>Whether a tenant's agents may see and call this tool.</summary>
    public bool IsVisibleTo(string tenantId) => TenantId is null || TenantId == tenantId;

    /// <summary>The tool's own name on its server.</summary>
    public string ToolName { get; }

    /// <summary><c>serverId/toolName</c>: how policy, weights and redaction rules name this tool (built once, not per call).</summary>
    public string Key { get; }

    /// <summary>The name clients see on the aggregate <c>/mcp</c> endpoint.</summary>
    public string PublicName { get; }

    /// <summary>The tool's own classification, before operator overrides (see <see cref="ClassificationSource"/>).</summary>
    public ToolClassification Classification { get; }

    /// <summary>Where <see cref="Classification"/> came from; in-process tools declare theirs in code.</summary>
    public ToolClassificationSource ClassificationSource { get; init; } = ToolClassificationSource.Code;

    /// <summary>
    /// What the tool's annotations claim (<c>readOnlyHint</c> and not <c>destructiveHint</c> is read), shown to operators as a
    /// hint; null when the tool declares no annotations. For an untrusted upstream this decides nothing.
    /// </summary>
    public ToolClassification? AnnotationHint => OwnNameTool.Annotations is null ? null : Classify(OwnNameTool);

    public bool IsAction => Classification == ToolClassification.Action;

    /// <summary>The tool definition as listed on the aggregate endpoint.</summary>
    public Tool ProtocolTool { get; }

    /// <summary>The tool definition under its own name, as listed on its server's own endpoint.</summary>
    public Tool OwnNameTool { get; }

    public ToolInvoker Invoker { get; }

    /// <summary>
    /// The classification a tool declares for itself: read only when it says it is read-only and not
    /// destructive. Silence means action, because an unknown tool must not slip past the read-only gate.
    /// </summary>
    public static ToolClassification Classify(Tool tool) =>
        tool.Annotations is { ReadOnlyHint: true } annotations && annotations.DestructiveHint is not true
            ? ToolClassification.Read
            : ToolClassification.Action;

    /// <summary>
    /// An upstream tool's classification: its annotations are the upstream's own claim, so they decide only when an
    /// all-tenant admin chose to trust that server's annotations; otherwise every upstream tool is an action (write
    /// scope, read-write mode, confirmation) until an operator classifies it read.
    /// </summary>
    public static ToolClassification ClassifyUpstream(Tool tool, bool trustAnnotations) =>
        trustAnnotations ? Classify(tool) : ToolClassification.Action;

    private static ArgumentSchema? CompileInputSchema(Tool tool)
    {
        try
        {
            return ArgumentSchema.ForTool(tool.InputSchema);
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or Json.Schema.JsonSchemaException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            return null;
        }
    }

    private static Tool Clone(Tool tool, string name) => new()
    {
        Name = name,
        Title = tool.Title,
        Description = tool.Description,
        InputSchema = tool.InputSchema,
        OutputSchema = tool.OutputSchema,
        Annotations = tool.Annotations,
        Icons = tool.Icons,
        Meta = tool.Meta,
    };
}
