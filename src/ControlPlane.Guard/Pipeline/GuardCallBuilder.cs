using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.State;
using ControlPlane.Tokens;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Makes a <see cref="GuardCall"/> once per request: pins the guard state in force, splits off the confirmation
/// token, hashes the arguments. No stage does any of that again.
/// </summary>
public sealed class GuardCallBuilder(GuardStateCache guardState, ArgumentHasher hasher)
{
    /// <summary>The argument that carries a confirmation token; never part of a tool's own arguments.</summary>
    public const string ConfirmationArgument = "confirmation_token";

    /// <summary>A tools/call of <paramref name="tool"/>.</summary>
    public GuardCall ForTool(
        AgentIdentity agent,
        string? sessionId,
        ToolDescriptor tool,
        IDictionary<string, JsonElement>? arguments,
        IReadOnlyList<string>? duplicateKeys = null,
        GuardedOperation? operation = null,
        object? request = null) =>
        ForTool(new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, sessionId, tool.ServerId, tool.ToolName), agent.Token, agent.Grant, tool, arguments, duplicateKeys, operation, request);

    public GuardCall ForTool(
        CallIdentity identity,
        AgentToken token,
        ScopeGrant grant,
        ToolDescriptor tool,
        IDictionary<string, JsonElement>? arguments,
        IReadOnlyList<string>? duplicateKeys = null,
        GuardedOperation? operation = null,
        object? request = null) =>
        Build(GuardRequestKind.ToolCall, identity, token, grant, GuardTarget.ForTool(tool), arguments, duplicateKeys, operation, request);

    /// <summary>A resources/read, resources/subscribe, prompts/get or completion/complete of one server.</summary>
    public GuardCall ForServer(
        GuardRequestKind kind,
        AgentIdentity agent,
        string? sessionId,
        GuardTarget target,
        IDictionary<string, JsonElement>? arguments,
        GuardedOperation operation,
        object? request = null) =>
        Build(kind, new CallIdentity(agent.TenantId, agent.AgentId, agent.UserId, sessionId, target.ServerId, target.Name),
            agent.Token, agent.Grant, target, arguments, null, operation, request);

    private GuardCall Build(
        GuardRequestKind kind,
        CallIdentity identity,
        AgentToken token,
        ScopeGrant grant,
        GuardTarget target,
        IDictionary<string, JsonElement>? arguments,
        IReadOnlyList<string>? duplicateKeys,
        GuardedOperation? operation,
        object? request)
    {
        var own = WithoutConfirmation(arguments, out var confirmationToken);
        return new GuardCall(kind, identity, token, grant, target, guardState.Current, own, confirmationToken, hasher.Hash(own), duplicateKeys ?? [], operation, request);
    }

    /// <summary>The arguments without <c>confirmation_token</c>: the same instance when it is absent, else a copy.</summary>
    public static IDictionary<string, JsonElement>? WithoutConfirmation(IDictionary<string, JsonElement>? arguments, out string? token)
    {
        token = null;
        if (arguments is null || !arguments.TryGetValue(ConfirmationArgument, out var value)) return arguments;
        token = value.ValueKind == JsonValueKind.String ? value.GetString() : "";
        var copy = new Dictionary<string, JsonElement>(arguments, StringComparer.Ordinal);
        copy.Remove(ConfirmationArgument);
        return copy;
    }
}
