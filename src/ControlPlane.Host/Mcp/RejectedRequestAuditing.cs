using System.Text.Json.Nodes;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Host.Mcp;

/// <summary>
/// Audits a tools/call the SDK refused before the guard saw it (params it could not read: arguments that are not an
/// object, a name that is not a string), as refused with <c>INVALID_REQUEST</c>, so probing with malformed calls shows
/// up in the audit like every other attempt. A request the guard itself audited (an unknown tool) is marked and skipped.
/// </summary>
internal static class RejectedRequestAuditing
{
    private const string AuditedItem = Guard.Pipeline.GuardedToolGateway.AuditedItem;

    public static McpMessageFilter Filter { get; } = next => async (context, cancellationToken) =>
    {
        try
        {
            await next(context, cancellationToken);
        }
        catch (Exception ex) when (
            ex is System.Text.Json.JsonException or McpProtocolException { ErrorCode: McpErrorCode.InvalidParams or McpErrorCode.InvalidRequest }
            && context.JsonRpcMessage is JsonRpcRequest { Method: RequestMethods.ToolsCall } request
            && context.User?.Identity is AgentIdentity agent
            && !(context.Items.TryGetValue(AuditedItem, out var audited) && audited is true)
            && context.Services?.GetService<CallAuditor>() is { } auditor)
        {
            await CallAuditor.TryRecordAsync(auditor.RecordUnroutableAsync(RequestMethods.ToolsCall, agent, context.Server.SessionId, null, NameOf(request),
                CallAuditor.InvalidRequestCode));
            throw;
        }
    };

    /// <summary>The tool name the request carried, if it carried a string one; the audit records what was asked for.</summary>
    private static string NameOf(JsonRpcRequest request) =>
        request.Params is JsonObject parameters && parameters["name"] is JsonValue value && value.TryGetValue<string>(out var name)
            ? name.Length > 200 ? name[..200] : name
            : "(unreadable)";
}
