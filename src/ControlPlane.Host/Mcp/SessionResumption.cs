using System.Text.Json;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Pipeline;
using ModelContextProtocol;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Host.Mcp;

/// <summary>
/// Keeps an MCP session alive beyond the silo that holds its live state. At the handshake the client's
/// initialize request is stored in the session's grain; a request for a session this silo does not hold (it was
/// parked after <see cref="SessionOptions.ParkAfter"/> idle, or opened on a silo that has since gone) rebuilds it
/// from there, for the same token on the same endpoint only. So an idle session costs storage, not memory, and a
/// silo restart or a load balancer without affinity does not end sessions.
/// </summary>
internal sealed partial class SessionResumption(SessionRegistry sessions, ILogger<SessionResumption> logger) : ISessionMigrationHandler
{
    /// <summary>A handshake larger than this (a client announcing huge experimental capabilities) is not kept: that session is not resumable.</summary>
    internal const int MaxHandshakeChars = 16 * 1024;

    public async ValueTask OnSessionInitializedAsync(HttpContext context, string sessionId, InitializeRequestParams initializeParams, CancellationToken cancellationToken)
    {
        if (context.User.Identity is not AgentIdentity agent) return;
        var handshake = JsonSerializer.Serialize(initializeParams, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(InitializeRequestParams)));
        if (handshake.Length > MaxHandshakeChars) handshake = null;
        try
        {
            await sessions.OpenResumableAsync(sessionId, agent, McpEndpointExtensions.EndpointOf(context), handshake, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The session works on this silo regardless (its first call records it again); it just cannot move.
            LogNotRecorded(logger, ex.GetType().Name);
        }
    }

    public async ValueTask<InitializeRequestParams?> AllowSessionMigrationAsync(HttpContext context, string sessionId, CancellationToken cancellationToken)
    {
        if (context.User.Identity is not AgentIdentity agent) return null;
        string? handshake;
        try
        {
            handshake = await sessions.ResumeAsync(sessionId, agent, McpEndpointExtensions.EndpointOf(context), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Cannot tell whether this caller may have the session: it starts a new one (404) rather than guess.
            LogResumeUndecided(logger, ex.GetType().Name);
            return null;
        }

        if (handshake is null) return null;
        LogResumed(logger, agent.TenantId, agent.AgentId);
        return JsonSerializer.Deserialize(handshake, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(InitializeRequestParams))) as InitializeRequestParams;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "An MCP session's handshake could not be recorded ({ErrorType}); the session will not be resumable on another silo.")]
    private static partial void LogNotRecorded(ILogger logger, string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Whether an MCP session may be resumed could not be decided ({ErrorType}); the client is told to start a new one.")]
    private static partial void LogResumeUndecided(ILogger logger, string errorType);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Resumed an MCP session of {TenantId}/{AgentId} on this silo.")]
    private static partial void LogResumed(ILogger logger, string tenantId, string agentId);
}
