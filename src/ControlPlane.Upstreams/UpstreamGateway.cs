using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Upstreams;

/// <summary>What an operator sees of an upstream on this silo: never a secret, only the names of env and header keys.</summary>
public sealed record UpstreamView(
    string Id,
    string? TenantId,
    string Transport,
    string? Command,
    string[] Args,
    string? Url,
    string[] EnvNames,
    string[] HeaderNames,
    string Source,
    string Status,
    int Restarts,
    int ToolCount);

/// <summary>
/// Runs this silo's connections to upstream servers: those declared in configuration and those registered in
/// the cluster's registry (polled, and refreshed at once after a change made through this silo). Adds,
/// restarts and removes connections so that they match the registrations.
/// </summary>
public sealed partial class UpstreamGateway(
    IOptions<UpstreamOptions> options,
    IGrainFactory grains,
    UpstreamSecretProtector secrets,
    ToolCatalog catalog,
    GuardStateCache guardState,
    ILoggerFactory loggerFactory,
    TimeProvider time) : BackgroundService
{
    private readonly UpstreamOptions _options = options.Value;
    private readonly SemaphoreSlim _processSlots = new(options.Value.MaxProcesses, options.Value.MaxProcesses);
    private readonly SemaphoreSlim _reconcile = new(1, 1);
    private readonly ILogger _logger = loggerFactory.CreateLogger<UpstreamGateway>();
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = 64 })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private Dictionary<string, UpstreamConnection> _connections = new(StringComparer.Ordinal);
    private long _registryVersion = -1;

    private IUpstreamRegistryGrain Registry => grains.GetGrain<IUpstreamRegistryGrain>(IUpstreamRegistryGrain.Singleton);

    /// <summary>The upstreams this silo runs, with their status.</summary>
    public IReadOnlyList<UpstreamView> List() =>
    [
        .. Volatile.Read(ref _connections).Values.OrderBy(c => c.Id, StringComparer.Ordinal).Select(c =>
        {
            var d = c.Definition;
            return new UpstreamView(d.Id, d.TenantId, d.Transport, d.Command, d.Args, d.Url, [.. d.Env.Keys.Order(StringComparer.Ordinal)],
                [.. d.Headers.Keys.Order(StringComparer.OrdinalIgnoreCase)], d.Source, c.Status.ToString().ToLowerInvariant(), c.Restarts,
                catalog.ForEndpoint(d.Id).Count());
        }),
    ];

    public bool IsDeclaredInConfiguration(string id) => _options.Servers.ContainsKey(id);

    internal UpstreamConnection? Find(string id) => Volatile.Read(ref _connections).GetValueOrDefault(id);

    internal IEnumerable<UpstreamConnection> Connections => Volatile.Read(ref _connections).Values;

    /// <summary>Reads the registry now and applies what changed (after an operator's change on this silo).</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => ReconcileAsync(force: true, cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ReconcileAsync(force: false, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The registry is unreachable for now: keep running what runs, try again on the next tick.
                LogRegistryUnavailable(_logger, ex.GetType().Name, ex.Message);
            }

            try
            {
                await Task.Delay(_options.RegistryPollInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private async Task ReconcileAsync(bool force, CancellationToken cancellationToken)
    {
        await _reconcile.WaitAsync(cancellationToken);
        try
        {
            if (!force && _registryVersion >= 0 && await Registry.GetVersionAsync() == _registryVersion) return;
            var snapshot = await Registry.GetAsync();

            var wanted = new Dictionary<string, UpstreamDefinition>(StringComparer.Ordinal);
            foreach (var (id, server) in _options.Servers)
            {
                wanted[id] = new UpstreamDefinition(id, server.TenantId, server.Transport, server.Command, [.. server.Args], server.Url,
                    server.Env, new Dictionary<string, string>(server.Headers, StringComparer.OrdinalIgnoreCase), "configuration");
            }

            foreach (var registration in snapshot.Servers)
            {
                if (wanted.ContainsKey(registration.Id)) continue;
                try
                {
                    wanted[registration.Id] = secrets.Reveal(registration);
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    // This silo does not share the key ring that encrypted it: run nothing rather than run it without its credentials.
                    LogCannotDecrypt(_logger, registration.Id);
                }
            }

            var current = _connections;
            var next = new Dictionary<string, UpstreamConnection>(StringComparer.Ordinal);
            var retired = new List<UpstreamConnection>();
            foreach (var (id, definition) in wanted)
            {
                if (current.TryGetValue(id, out var running) && running.Definition.SameAs(definition))
                {
                    next[id] = running;
                    continue;
                }

                if (running is not null) retired.Add(running);
                next[id] = new UpstreamConnection(definition, _options, catalog, guardState, _processSlots, _http, loggerFactory, time);
            }

            retired.AddRange(current.Where(kv => !wanted.ContainsKey(kv.Key)).Select(kv => kv.Value));
            Volatile.Write(ref _connections, next);
            _registryVersion = snapshot.Version;

            foreach (var connection in retired)
            {
                await connection.DisposeAsync();
                if (!next.ContainsKey(connection.Id)) catalog.RemoveServer(connection.Id);
            }

            foreach (var connection in next.Values.Where(c => !current.ContainsValue(c))) connection.Start();
        }
        finally
        {
            _reconcile.Release();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        foreach (var connection in Volatile.Read(ref _connections).Values) await connection.DisposeAsync();
        _http.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The upstream registry is unavailable ({ErrorType}: {Error}); running upstreams carry on.")]
    private static partial void LogRegistryUnavailable(ILogger logger, string errorType, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "Upstream '{ServerId}' cannot be started on this silo: its credentials do not decrypt with this silo's Data Protection key ring.")]
    private static partial void LogCannotDecrypt(ILogger logger, string serverId);
}
