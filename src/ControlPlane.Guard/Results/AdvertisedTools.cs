using System.Runtime.CompilerServices;
using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.State;
using ControlPlane.Policy;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Results;

/// <summary>
/// The tool definitions tools/list shows: a read tool whose results the <see cref="ResultShaper"/> changes is listed
/// with the outputSchema its shaped results validate against (<see cref="AdvertisedOutputSchema"/>), or without one
/// where none can be derived. Action tools' results are not shaped, so they are listed as they are.
/// </summary>
/// <remarks>
/// Built by the shaper that it describes, so both read the same redactor and the same default. A
/// <see cref="GuardPolicy"/> is immutable and replaced with each guard state version, so derivations are cached per
/// policy instance and tool, weakly on both: tools/list pays a lookup, and a replaced policy or tool takes its
/// entries with it.
/// </remarks>
public sealed class AdvertisedTools
{
    private readonly Redactor _redactor;
    private readonly Func<ProjectionSetting?, bool> _redacts;
    private readonly ConditionalWeakTable<GuardPolicy, PolicyTools> _byPolicy = new();
    private readonly ConditionalWeakTable<GuardPolicy, PolicyTools>.CreateValueCallback _forPolicy;

    internal AdvertisedTools(Redactor redactor, Func<ProjectionSetting?, bool> redacts)
    {
        _redactor = redactor;
        _redacts = redacts;
        _forPolicy = policy => new PolicyTools(this, policy);
    }

    /// <summary>
    /// The tool as this caller is to see it: <paramref name="isAction"/> is the tool's classification for the
    /// caller's tenant, and <paramref name="ownName"/> picks the definition under the tool's own name (the
    /// per-server endpoint) over the aggregate endpoint's.
    /// </summary>
    public Tool For(ToolDescriptor tool, GuardPolicy policy, bool isAction, bool ownName)
    {
        if (isAction || tool.OwnNameTool.OutputSchema is null) return ownName ? tool.OwnNameTool : tool.ProtocolTool;
        var advertised = _byPolicy.GetValue(policy, _forPolicy).For(tool);
        return ownName ? advertised.OwnNameTool : advertised.ProtocolTool;
    }

    /// <summary>
    /// Whether the tool as listed to this caller has an outputSchema: a refusal then leaves structuredContent out,
    /// because a client would validate it against that schema.
    /// </summary>
    public bool HasOutputSchema(ToolDescriptor tool, GuardPolicy policy, bool isAction) =>
        For(tool, policy, isAction, ownName: true).OutputSchema is not null;

    private Advertised Derive(ToolDescriptor tool, GuardPolicy policy)
    {
        var projection = policy.Projection(tool);
        var declared = tool.OwnNameTool.OutputSchema;
        var schema = AdvertisedOutputSchema.Derive(declared, projection, _redacts(projection) ? _redactor : null);
        if (schema is { } derived && declared is { } original && JsonElement.DeepEquals(derived, original))
        {
            return new Advertised(tool.ProtocolTool, tool.OwnNameTool);
        }

        var ownName = WithOutputSchema(tool.OwnNameTool, schema);
        return new Advertised(ReferenceEquals(tool.ProtocolTool, tool.OwnNameTool) ? ownName : WithOutputSchema(tool.ProtocolTool, schema), ownName);
    }

    private static Tool WithOutputSchema(Tool tool, JsonElement? schema) => new()
    {
        Name = tool.Name,
        Title = tool.Title,
        Description = tool.Description,
        InputSchema = tool.InputSchema,
        OutputSchema = schema,
        Annotations = tool.Annotations,
        Icons = tool.Icons,
        Meta = tool.Meta,
    };

    private sealed record Advertised(Tool ProtocolTool, Tool OwnNameTool);

    /// <summary>One policy's derivations, by tool.</summary>
    private sealed class PolicyTools
    {
        private readonly ConditionalWeakTable<ToolDescriptor, Advertised> _byTool = new();
        private readonly ConditionalWeakTable<ToolDescriptor, Advertised>.CreateValueCallback _derive;

        public PolicyTools(AdvertisedTools owner, GuardPolicy policy) => _derive = tool => owner.Derive(tool, policy);

        public Advertised For(ToolDescriptor tool) => _byTool.GetValue(tool, _derive);
    }
}
