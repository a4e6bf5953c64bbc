using System.Collections.Concurrent;
using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Limits;
using ControlPlane.Guard.State;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Upstreams;

/// <summary>Where an upstream connection is in its life.</summary>
public enum UpstreamStatus
{
    Starting,
    Running,
    Restarting,

    /// <summary>A stdio server waiting for a process slot: <see cref="UpstreamOptions.MaxProcesses"/> already run on this silo.</summary>
    Queued,

    /// <summary>A server-level kill switch covers it: its process is stopped until the switch is cleared.</summary>
    Killed,

    /// <summary>A stdio server whose command this silo's allowlist does not hold: it never starts here (see <see cref="UpstreamConnection.Problem"/>).</summary>
    Refused,
    Stopped,
}

/// <summary>
/// One upstream MCP server on this silo: a supervised connection (a child process for stdio, a pooled HTTP
/// client for Streamable HTTP) that is restarted with backoff when it exits, fails or hangs, and stopped while
/// a server-level kill switch covers it. Its tools go into the catalog under <c>&lt;server&gt;__&lt;tool&gt;</c>.
/// </summary>
internal sealed partial class UpstreamConnection : IAsyncDisposable
{
    /// <summary>Log messages are deprecated by the newest specification, but the servers in use still send them; they pass through as they are.</summary>
    private const string LoggingMessageMethod = "notifications/message";

    // How long a result waits for the progress sent before it to reach a caller that is slow to read.
    private static readonly TimeSpan ProgressFlushBound = TimeSpan.FromSeconds(1);

    private readonly UpstreamOptions _options;
    private readonly ToolCatalog _catalog;
    private readonly GuardStateCache _guardState;
    private readonly SemaphoreSlim _processSlots;
    private readonly HttpClient _http;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<McpServer, int> _callers = new();
    private readonly Lock _subscriptionLock = new();
    /// <summary>By URI, the subscribed sessions by session id (a request's <see cref="McpServer"/> is a per-request view, so never the key).</summary>
    private readonly Dictionary<string, Dictionary<string, Subscriber>> _subscribers = new(StringComparer.Ordinal);
    private TaskCompletionSource _wake = NewSignal();
    private McpClient? _client;
    private readonly ProgressTap _progress = new();
    private Task _supervisor = Task.CompletedTask;
    private int _healthCheckRunning;

    public UpstreamConnection(UpstreamDefinition definition, UpstreamOptions options, ToolCatalog catalog, GuardStateCache guardState,
        SemaphoreSlim processSlots, HttpClient http, ILoggerFactory loggerFactory, TimeProvider time)
    {
        Definition = definition;
        _options = options;
        _catalog = catalog;
        _guardState = guardState;
        _processSlots = processSlots;
        _http = http;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<UpstreamConnection>();
        _time = time;
    }

    public UpstreamDefinition Definition { get; }

    public string Id => Definition.Id;

    /// <summary>The registration this connection runs: the id, or <c>id@tenant</c> for a tenant's own.</summary>
    public string Key => Definition.Key;

    public UpstreamStatus Status { get; private set; } = UpstreamStatus.Starting;

    /// <summary>How many times this silo restarted the server since it was registered here.</summary>
    public int Restarts { get; private set; }

    /// <summary>Why the last attempt to start or connect failed (credential values masked); null once it runs.</summary>
    public string? Problem { get; private set; }

    /// <summary>Why calls cannot reach the upstream while it has no live client.</summary>
    internal string WhyUnavailable => Status switch
    {
        UpstreamStatus.Killed => "it is stopped by a kill switch",
        UpstreamStatus.Refused => "it may not start on this silo: " + Problem,
        _ when Problem is { } problem => "it is starting or restarting; its last attempt failed: " + problem,
        UpstreamStatus.Queued => $"it waits for a process slot: {_options.MaxProcesses} stdio upstreams already run on this silo (ControlPlane:Upstreams:MaxProcesses); it starts when one is removed",
        _ => "it is starting or restarting",
    };

    /// <summary>The live client, or null while the upstream is starting, restarting or stopped.</summary>
    internal McpClient? Client => Volatile.Read(ref _client) is { Completion.IsCompleted: false } client ? client : null;

    public void Start()
    {
        // Known to the catalog at once, so its mode can be set and its endpoint answers, even before its tools are in.
        if (!_catalog.ForRegistration(Id, Definition.TenantId).Any()) _catalog.SetServerTools(Id, Definition.TenantId, []);
        _guardState.SwitchesAdded += OnSwitchesAdded;
        _supervisor = Task.Run(SuperviseAsync);
    }

    private bool IsKilled => Covers(_guardState.Kills);

    /// <summary>
    /// A global switch or a server switch on this id stops the process; a server switch limited to one tenant stops
    /// only that tenant's own registration (the global registration's process keeps serving the other tenants).
    /// </summary>
    private bool Covers(KillIndex index) =>
        index.Contains("global") || index.Contains("server|" + Id) || (Definition.TenantId is { } tenant && index.Contains($"server|{Id}|{tenant}"));

    private void OnSwitchesAdded(KillIndex index, IReadOnlyList<ControlPlane.KillSwitches.KillSwitch> added)
    {
        if (Covers(index)) Wake();
    }

    private void Wake() => Interlocked.Exchange(ref _wake, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task SuperviseAsync()
    {
        var delay = _options.MinRestartDelay;
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            if (IsKilled)
            {
                Status = UpstreamStatus.Killed;
                await WaitAsync(TimeSpan.FromMilliseconds(250), stop);
                continue;
            }

            // Checked again at every start, not only at registration: a registration stored before the allowlist
            // changed (or made on a silo with another allowlist) must not start here.
            if (Definition.Transport == UpstreamDefinition.Stdio && _options.Stdio.Refuse(Definition.Command) is { } refused)
            {
                if (Status != UpstreamStatus.Refused) LogCommandRefused(_logger, Key, refused);
                Problem = refused;
                Status = UpstreamStatus.Refused;
                await WaitAsync(Timeout.InfiniteTimeSpan, stop);
                continue;
            }

            var holdsSlot = false;
            McpClient? client = null;
            var startedAt = _time.GetTimestamp();
            try
            {
                if (Definition.Transport == UpstreamDefinition.Stdio)
                {
                    if (!await _processSlots.WaitAsync(TimeSpan.Zero, stop))
                    {
                        Status = UpstreamStatus.Queued;
                        LogNoProcessSlot(_logger, Key, _options.MaxProcesses);
                        await _processSlots.WaitAsync(stop);
                    }

                    holdsSlot = true;
                }

                var wake = Volatile.Read(ref _wake).Task;
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    connectTimeout.CancelAfter(_options.ConnectTimeout);
                    client = await McpClient.CreateAsync(_progress.Wrap(CreateTransport()), new McpClientOptions
                    {
                        ClientInfo = new Implementation { Name = "controlplane-gateway", Version = "1.0" },
                        Handlers = new McpClientHandlers
                        {
#pragma warning disable MCP9005 // Sampling is deprecated by the newest specification, but the servers in use still ask for it.
                            SamplingHandler = (request, _, ct) => SoleCaller("sampling").SampleAsync(
                                request ?? throw new McpProtocolException("sampling/createMessage needs params.", McpErrorCode.InvalidParams), ct),
#pragma warning restore MCP9005
                            ElicitationHandler = (request, ct) => SoleCaller("elicitation").ElicitAsync(
                                request ?? throw new McpProtocolException("elicitation/create needs params.", McpErrorCode.InvalidParams), ct),
                        },
                    }, _loggerFactory, connectTimeout.Token);
                    RegisterForwarding(client);
                    await RefreshToolsAsync(client, connectTimeout.Token);
                    await ResubscribeAsync(client, connectTimeout.Token);
                }

                Volatile.Write(ref _client, client);
                Problem = null;
                Status = UpstreamStatus.Running;
                LogRunning(_logger, Key, Definition.Transport, _catalog.ForRegistration(Id, Definition.TenantId).Count());

                // Runs until the process exits or the connection drops, a kill switch covers it, a hang check asks for a restart, or it is removed.
                while (!client.Completion.IsCompleted && !stop.IsCancellationRequested && !IsKilled && !wake.IsCompleted)
                {
                    await Task.WhenAny(client.Completion, wake, Task.Delay(TimeSpan.FromMilliseconds(500), _time, stop));
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                Problem = WithoutSecrets(ex.Message);
                LogFailed(_logger, Key, ex.GetType().Name, Problem);
            }
            finally
            {
                Volatile.Write(ref _client, null);
                if (client is not null) await DisposeQuietlyAsync(client);
                if (holdsSlot) _processSlots.Release();
            }

            if (stop.IsCancellationRequested) break;
            if (IsKilled)
            {
                LogKilled(_logger, Key);
                continue;
            }

            // A server that ran a good while before it stopped starts again from the shortest delay.
            if (_time.GetElapsedTime(startedAt) > TimeSpan.FromSeconds(60)) delay = _options.MinRestartDelay;
            Status = UpstreamStatus.Restarting;
            Restarts++;
            LogRestarting(_logger, Key, delay.TotalMilliseconds, Restarts);
            await WaitAsync(delay, stop);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _options.MaxRestartDelay.Ticks));
        }

        Status = UpstreamStatus.Stopped;
    }

    private async Task WaitAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.WhenAny(Task.Delay(delay, _time, stop), Volatile.Read(ref _wake).Task);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private IClientTransport CreateTransport()
    {
        if (Definition.Transport == UpstreamDefinition.Http)
        {
            return new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(Definition.Url!),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = Definition.Headers.ToDictionary(StringComparer.OrdinalIgnoreCase),
                Name = Id,
            }, _http, _loggerFactory, ownsHttpClient: false);
        }

        // The child starts from an empty environment (the SDK clears the inherited one when InheritEnvironmentVariables is
        // false) plus an explicit list, in a directory of its own: the silo's secrets live in its environment and data directory.
        var workDirectory = Stdio.ChildWorkspace.Prepare(_options.Stdio.WorkDirectory ?? Stdio.UpstreamStdioOptions.FallbackWorkDirectory, Key);
        return new StdioClientTransport(new StdioClientTransportOptions
        {
            Command = Definition.Command!,
            Arguments = [.. Definition.Args],
            Name = Id,
            WorkingDirectory = workDirectory,
            InheritEnvironmentVariables = false,
            EnvironmentVariables = Stdio.ChildEnvironment.For(Definition, _options.Stdio, workDirectory),
            ShutdownTimeout = TimeSpan.FromSeconds(2),
            StandardErrorLines = line => LogStandardError(_logger, Key, WithoutSecrets(line)),
        }, _loggerFactory);
    }

    /// <summary>An upstream may echo its own credentials on stderr: they never reach our logs.</summary>
    private string WithoutSecrets(string line)
    {
        if (line.Length > 500) line = line[..500];
        foreach (var secret in Definition.Env.Values.Concat(Definition.Headers.Values))
        {
            if (secret.Length >= 4) line = line.Replace(secret, "***", StringComparison.Ordinal);
        }

        return line;
    }

    private void RegisterForwarding(McpClient client)
    {
        client.RegisterNotificationHandler(NotificationMethods.ToolListChangedNotification, async (_, ct) =>
        {
            try
            {
                await RefreshToolsAsync(client, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogFailed(_logger, Key, ex.GetType().Name, ex.Message);
            }
        });

        // Resource updates go to the sessions that subscribed to that URI through this registration, and only while
        // each may still read it (token valid, no kill switch): never to a session that did not ask.
        client.RegisterNotificationHandler(NotificationMethods.ResourceUpdatedNotification, async (notification, ct) =>
        {
            if (notification.Params is not System.Text.Json.Nodes.JsonObject { } body
                || body["uri"] is not System.Text.Json.Nodes.JsonValue value || !value.TryGetValue<string>(out var uri))
            {
                return;
            }

            foreach (var session in SubscribersOf(uri))
            {
                try
                {
                    await session.SendNotificationAsync(NotificationMethods.ResourceUpdatedNotification, notification.Params, cancellationToken: ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The session is closing; its subscriptions go when it does.
                }
            }
        });

        // Log messages carry no link to the call that caused them, and one upstream may serve several tenants: a line
        // goes to the session with a call in flight only when that session is the only one, and is dropped otherwise
        // rather than shown to a session (or a tenant) it may not belong to.
        client.RegisterNotificationHandler(LoggingMessageMethod, async (notification, ct) =>
        {
            var callers = _callers.Keys.Take(2).ToList();
            if (callers.Count != 1) return;
            try
            {
                await callers[0].SendNotificationAsync(LoggingMessageMethod, notification.Params, cancellationToken: ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A caller that went away misses a log line.
            }
        });
    }

    /// <summary>
    /// The client session a server-to-client request (sampling, elicitation) belongs to. The upstream connection is
    /// shared and stdio carries no link to the call that caused the request, so it is routed only when exactly one
    /// session has a call in flight on this upstream; otherwise it is refused rather than sent to the wrong user.
    /// </summary>
    private McpServer SoleCaller(string what)
    {
        var callers = _callers.Keys.Take(2).ToList();
        return callers.Count == 1
            ? callers[0]
            : throw new McpProtocolException(
                $"ControlPlane cannot route this {what} request: {(callers.Count == 0 ? "no client call is in flight" : "several client sessions have calls in flight")} on upstream '{Id}'.",
                McpErrorCode.InvalidRequest);
    }

    /// <summary>
    /// Subscribes a client session to a resource of this upstream. The upstream sees one subscription per URI (the
    /// connection is shared), made when the first session subscribes and renewed after every restart.
    /// <paramref name="mayReceive"/> is asked before each update is passed on.
    /// </summary>
    internal async Task SubscribeAsync(McpClient client, string sessionId, McpServer session, string uri, Func<bool> mayReceive, CancellationToken cancellationToken)
    {
        bool first;
        lock (_subscriptionLock)
        {
            if (!_subscribers.TryGetValue(uri, out var sessions)) _subscribers[uri] = sessions = new(StringComparer.Ordinal);
            first = sessions.Count == 0;
            sessions[sessionId] = new Subscriber(session, mayReceive);
        }

        if (!first) return;
        try
        {
            await client.SubscribeToResourceAsync(uri, cancellationToken: cancellationToken);
        }
        catch
        {
            lock (_subscriptionLock) Drop(uri, sessionId);
            throw;
        }
    }

    /// <summary>Ends a session's subscription; the upstream's own ends with the last one.</summary>
    internal async Task UnsubscribeAsync(string sessionId, string uri, CancellationToken cancellationToken)
    {
        bool last;
        lock (_subscriptionLock) last = Drop(uri, sessionId);
        if (last && Client is { } client) await client.UnsubscribeFromResourceAsync(uri, cancellationToken: cancellationToken);
    }

    /// <summary>Forgets every subscription of a session that closed.</summary>
    internal void Forget(string sessionId)
    {
        List<string> emptied = [];
        lock (_subscriptionLock)
        {
            foreach (var uri in _subscribers.Keys.ToList())
            {
                if (Drop(uri, sessionId)) emptied.Add(uri);
            }
        }

        if (emptied.Count > 0 && Client is { } client) _ = UnsubscribeQuietlyAsync(client, emptied);
    }

    /// <summary>Whether this session subscribed to the URI here.</summary>
    internal bool IsSubscribed(string sessionId, string uri)
    {
        lock (_subscriptionLock) return _subscribers.TryGetValue(uri, out var sessions) && sessions.ContainsKey(sessionId);
    }

    /// <summary>Removes one session's subscription; true when it was the URI's last.</summary>
    private bool Drop(string uri, string sessionId)
    {
        if (!_subscribers.TryGetValue(uri, out var sessions) || !sessions.Remove(sessionId)) return false;
        if (sessions.Count > 0) return false;
        _subscribers.Remove(uri);
        return true;
    }

    private List<McpServer> SubscribersOf(string uri)
    {
        lock (_subscriptionLock)
        {
            return _subscribers.TryGetValue(uri, out var sessions) ? [.. sessions.Values.Where(s => s.MayReceive()).Select(s => s.Session)] : [];
        }
    }

    private sealed record Subscriber(McpServer Session, Func<bool> MayReceive);

    /// <summary>A restarted upstream knows nothing of the subscriptions made on its predecessor.</summary>
    private async Task ResubscribeAsync(McpClient client, CancellationToken cancellationToken)
    {
        List<string> uris;
        lock (_subscriptionLock) uris = [.. _subscribers.Keys];
        foreach (var uri in uris) await client.SubscribeToResourceAsync(uri, cancellationToken: cancellationToken);
    }

    private async Task UnsubscribeQuietlyAsync(McpClient client, List<string> uris)
    {
        foreach (var uri in uris)
        {
            try
            {
                await client.UnsubscribeFromResourceAsync(uri, cancellationToken: _stop.Token);
            }
            catch (Exception)
            {
                // The upstream left or restarts without it; either way nothing is sent for this URI any more.
            }
        }
    }

    /// <summary>Lists the upstream's tools (every page) and swaps them into the catalog.</summary>
    private async Task RefreshToolsAsync(McpClient client, CancellationToken cancellationToken)
    {
        var tools = new List<ToolDescriptor>();
        var request = new ListToolsRequestParams();
        do
        {
            var page = await client.ListToolsAsync(request, cancellationToken);
            foreach (var tool in page.Tools)
            {
                var toolName = tool.Name;
                // The upstream's annotations are its own claim: they classify only where an all-tenant admin trusts this server.
                tools.Add(new ToolDescriptor(Id, tool, ToolDescriptor.ClassifyUpstream(tool, Definition.TrustAnnotations), (call, ct) => InvokeAsync(toolName, call, ct),
                    Id + ToolCatalog.Separator + tool.Name)
                {
                    TenantId = Definition.TenantId,
                    ClassificationSource = Definition.TrustAnnotations ? ToolClassificationSource.Annotations : ToolClassificationSource.Untrusted,
                });
            }

            request = new ListToolsRequestParams { Cursor = page.NextCursor };
        }
        while (request.Cursor is not null);

        _catalog.SetServerTools(Id, Definition.TenantId, tools);
    }

    /// <summary>
    /// Forwards an allowed call upstream under the tool's own name, with the caller's progress token mapped to
    /// one of ours. Cancelling <paramref name="cancellationToken"/> (client, kill switch, timeout) sends
    /// notifications/cancelled upstream. A dead or restarting upstream is reported as unavailable at once.
    /// </summary>
    private async ValueTask<CallToolResult> InvokeAsync(string toolName, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var client = Volatile.Read(ref _client);
        if (client is null || client.Completion.IsCompleted)
        {
            throw new DownstreamUnavailableException(Id, WhyUnavailable, Status == UpstreamStatus.Queued ? TimeSpan.FromSeconds(30) : _options.MinRestartDelay + TimeSpan.FromSeconds(1),
                new InvalidOperationException("No live connection."));
        }

        var caller = request.Server;
        _callers.AddOrUpdate(caller, 1, static (_, n) => n + 1);
        ProgressRelay? progress = null;
        try
        {
            var upstreamParams = new CallToolRequestParams { Name = toolName, Arguments = request.Params?.Arguments };
            if (request.Params?.ProgressToken is { } callerToken)
            {
                // Our own token upstream: the caller's could collide with another caller's on this shared connection.
                var ourToken = Guid.NewGuid().ToString("N");
                upstreamParams.Meta = new System.Text.Json.Nodes.JsonObject { ["progressToken"] = ourToken };
                progress = _progress.Open(ourToken, value => caller.NotifyProgressAsync(callerToken, value, cancellationToken: cancellationToken));
            }

            var result = await client.CallToolAsync(upstreamParams, cancellationToken);
            if (progress is not null) await progress.FlushAsync(ProgressFlushBound, _time);
            return result;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled by the caller, a kill switch or the timeout: a hung upstream also ends up here, so check it answers.
            _ = CheckHealthAsync(client);
            throw;
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or ObjectDisposedException or ClientTransportClosedException or OperationCanceledException
                                   || (ex is McpException && ex is not McpProtocolException))
        {
            Wake();
            throw new DownstreamUnavailableException(Id, "it closed the connection (it exited or crashed) and is being restarted",
                _options.MinRestartDelay + TimeSpan.FromSeconds(1), ex);
        }
        finally
        {
            if (progress is not null) await progress.DisposeAsync();
            if (_callers.AddOrUpdate(caller, 0, static (_, n) => n - 1) <= 0) _callers.TryRemove(new KeyValuePair<McpServer, int>(caller, 0));
        }
    }

    /// <summary>After a call was cancelled or timed out: an upstream that does not answer a ping is hung, and is restarted.</summary>
    private async Task CheckHealthAsync(McpClient client)
    {
        if (Interlocked.Exchange(ref _healthCheckRunning, 1) == 1) return;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(_options.PingTimeout);
            await client.PingAsync(cancellationToken: timeout.Token);
        }
        catch (Exception ex) when (!_stop.IsCancellationRequested)
        {
            if (ReferenceEquals(Volatile.Read(ref _client), client))
            {
                LogHung(_logger, Key, _options.PingTimeout.TotalSeconds, ex.GetType().Name);
                Wake();
            }
        }
        catch (Exception)
        {
            // Shutting down.
        }
        finally
        {
            Volatile.Write(ref _healthCheckRunning, 0);
        }
    }

    private static async Task DisposeQuietlyAsync(McpClient client)
    {
        try
        {
            await client.DisposeAsync();
        }
        catch (Exception)
        {
            // The process is gone either way.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _guardState.SwitchesAdded -= OnSwitchesAdded;
        await _stop.CancelAsync();
        Wake();
        try
        {
            await _supervisor.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Upstream '{ServerId}' ({Transport}) is running with {ToolCount} tools.")]
    private static partial void LogRunning(ILogger logger, string serverId, string transport, int toolCount);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream '{ServerId}' failed: {ErrorType}: {Error}")]
    private static partial void LogFailed(ILogger logger, string serverId, string errorType, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream '{ServerId}' stopped; restarting in {DelayMs} ms (restart {Restarts}).")]
    private static partial void LogRestarting(ILogger logger, string serverId, double delayMs, int restarts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream '{ServerId}' is stopped by a kill switch; it starts again when the switch is cleared.")]
    private static partial void LogKilled(ILogger logger, string serverId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream '{ServerId}' did not answer a ping within {Seconds} s ({ErrorType}); restarting it as hung.")]
    private static partial void LogHung(ILogger logger, string serverId, double seconds, string errorType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Upstream '{ServerId}' waits for a process slot: {MaxProcesses} stdio servers already run on this silo.")]
    private static partial void LogNoProcessSlot(ILogger logger, string serverId, int maxProcesses);

    [LoggerMessage(Level = LogLevel.Error, Message = "Upstream '{ServerId}' is not started on this silo: {Reason}.")]
    private static partial void LogCommandRefused(ILogger logger, string serverId, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Upstream '{ServerId}' stderr: {Line}")]
    private static partial void LogStandardError(ILogger logger, string serverId, string line);
}
