using System.Collections.Concurrent;
using ControlPlane.Guard.Catalog;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Host.Mcp;

/// <summary>
/// The MCP sessions open on this silo, so that a change of the tool catalog (an upstream added, removed or
/// announcing new tools), or of the tool policy that decides what tools/list shows and advertises (a server's mode, a
/// classification, a projection that changes the advertised outputSchema), reaches them as
/// notifications/tools/list_changed: on /mcp for any change, on /mcp/{serverId} for a change of that server.
/// </summary>
internal sealed partial class ToolListChangeNotifier : IDisposable
{
    private readonly ConcurrentDictionary<McpServer, string?> _sessions = new();
    private readonly ToolCatalog _catalog;
    private readonly Guard.State.GuardStateCache _guardState;
    private readonly ILogger<ToolListChangeNotifier> _logger;

    public ToolListChangeNotifier(ToolCatalog catalog, Guard.State.GuardStateCache guardState, ILogger<ToolListChangeNotifier> logger)
    {
        _catalog = catalog;
        _guardState = guardState;
        _logger = logger;
        _catalog.Changed += OnChanged;
        _guardState.ToolPolicyChanged += OnChanged;
    }

    public void Opened(McpServer session, string? endpointServerId) => _sessions[session] = endpointServerId;

    public void Closed(McpServer session) => _sessions.TryRemove(session, out _);

    private void OnChanged(IReadOnlyList<string> serverIds)
    {
        foreach (var (session, endpoint) in _sessions)
        {
            if (endpoint is null || serverIds.Contains(endpoint)) _ = NotifyAsync(session);
        }
    }

    private async Task NotifyAsync(McpServer session)
    {
        try
        {
            await session.SendNotificationAsync(NotificationMethods.ToolListChangedNotification);
        }
        catch (Exception ex)
        {
            // The session is closing: it will list tools afresh if it reconnects.
            LogNotifyFailed(_logger, ex.GetType().Name);
        }
    }

    public void Dispose()
    {
        _catalog.Changed -= OnChanged;
        _guardState.ToolPolicyChanged -= OnChanged;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "A tools/list_changed notification could not be sent ({ErrorType}).")]
    private static partial void LogNotifyFailed(ILogger logger, string errorType);
}
