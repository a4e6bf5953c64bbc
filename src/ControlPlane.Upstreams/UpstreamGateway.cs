using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Upstreams;

/// <summary>
/// What an operator sees of an upstream on this silo: never a secret, only the names of env and header keys. <c>Problem</c>
/// says why it is not running (a refused command, an egress refusal, the last failure), with credential values masked.
/// </summary>
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
    int ToolCount,
    bool TrustAnnotations,
    string? Problem = null);

/// <summary>
/// Runs this silo's connections to upstream servers: those declared in configuration and those registered in
/// the cluster's registry (polled, and refreshed at once after a change made through this silo). Adds,
/// restarts and removes connections so that they match the registrations: one connection (one process for
/// stdio) per registration, so a tenant's own registration of an id runs apart from the global one.
/// </summary>
public sealed partial class UpstreamGateway(
    IOptions<UpstreamOptions> options,
    IGrainFactory grains,
    UpstreamSecretProtector secrets,
    ToolCatalog catalog,
    GuardStateCache guardState,
    ILoggerFactory loggerFactory,
    TimeProvider time,
    Egress.EgressPolicy egress) : BackgroundService, IToolServerAvailability
{
    private readonly UpstreamOptions _options = options.Value;
    private readonly SemaphoreSlim _processSlots = new(options.Value.MaxProcesses, options.Value.MaxProcesses);
    private readonly SemaphoreSlim _reconcile = new(1, 1);
    private readonly ILogger _logger = loggerFactory.CreateLogger<UpstreamGateway>();
    // Every connection an HTTP upstream opens is dialled through the egress policy, at the address it resolves to then.
    private readonly HttpClient _http = new(new Egress.EgressConnector(egress).CreateHandler())
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private Dictionary<string, UpstreamConnection> _connections = new(StringComparer.Ordinal);
    private long _registryVersion = -1;

    private IUpstreamRegistryGrain Registry => grains.GetGrain<IUpstreamRegistryGrain>(IUpstreamRegistryGrain.Singleton);

    /// <summary>The upstreams this silo runs, with their status.</summary>
    public IReadOnlyList<UpstreamView> List() =>
    [
        .. Volatile.Read(ref _connections).Values.OrderBy(c => c.Id, StringComparer.Ordinal).ThenBy(c => c.Definition.TenantId, StringComparer.Ordinal).Select(c =>
        {
            var d = c.Definition;
            return new UpstreamView(d.Id, d.TenantId, d.Transport, d.Command, d.Args, d.Url, [.. d.Env.Keys.Order(StringComparer.Ordinal)],
                [.. d.Headers.Keys.Order(StringComparer.OrdinalIgnoreCase)], d.Source, c.Status.ToString().ToLowerInvariant(), c.Restarts,
                catalog.ForRegistration(d.Id, d.TenantId).Count(), d.TrustAnnotations, c.Client is null ? c.Problem : null);
        }),
    ];

    public bool IsDeclaredInConfiguration(string id) => _options.Servers.ContainsKey(id);

    /// <summary>The connection that serves a tenant's agents under a server id: the tenant's own registration, else the global one.</summary>
    internal UpstreamConnection? Resolve(string id, string tenantId)
    {
        var connections = Volatile.Read(ref _connections);
        // The global registration is keyed by the bare id, so it never names another tenant's.
        return connections.GetValueOrDefault(UpstreamServerRegistration.KeyOf(id, tenantId)) ?? connections.GetValueOrDefault(id);
    }

    public string? WhyUnavailable(string serverId, string tenantId) => Resolve(serverId, tenantId) is { Client: null } connection ? connection.WhyUnavailable : null;

    /// <summary>The connections that serve a tenant's agents, one per server id (its own registrations in place of the global ones).</summary>
    internal IEnumerable<UpstreamConnection> ServingTenant(string tenantId) =>
        Connections.Select(c => c.Id).Distinct(StringComparer.Ordinal).Select(id => Resolve(id, tenantId)).OfType<UpstreamConnection>();

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

            // Keyed by registration: the global one by its id, a tenant's own as id@tenant.
            var wanted = new Dictionary<string, UpstreamDefinition>(StringComparer.Ordinal);
            foreach (var (id, server) in _options.Servers)
            {
                var configured = new UpstreamDefinition(id, server.TenantId, server.Transport, server.Command, [.. server.Args], server.Url,
                    server.Env, new Dictionary<string, string>(server.Headers, StringComparer.OrdinalIgnoreCase), "configuration")
                {
                    TrustAnnotations = server.TrustAnnotations,
                };
                wanted[configured.Key] = configured;
            }

            foreach (var registration in snapshot.Servers)
            {
                // An id declared in configuration belongs to the configuration alone.
                if (_options.Servers.ContainsKey(registration.Id)) continue;
                try
                {
                    wanted[registration.Key] = secrets.Reveal(registration);
                }
                catch (System.Security.Cryptography.CryptographicException)
                {
                    // This silo does not share the key ring that encrypted it: run nothing rather than run it without its credentials.
                    LogCannotDecrypt(_logger, registration.Key);
                }
            }

            var current = _connections;
            var next = new Dictionary<string, UpstreamConnection>(StringComparer.Ordinal);
            var retired = new List<UpstreamConnection>();
            foreach (var (key, definition) in wanted)
            {
                if (current.TryGetValue(key, out var running) && running.Definition.SameAs(definition))
                {
                    next[key] = running;
                    continue;
                }

                if (running is not null) retired.Add(running);
                next[key] = new UpstreamConnection(definition, _options, catalog, guardState, _processSlots, _http, loggerFactory, time);
            }

            retired.AddRange(current.Where(kv => !wanted.ContainsKey(kv.Key)).Select(kv => kv.Value));

            // A removed registration leaves the catalog before its connection goes: agents stop seeing its tools at once,
            // instead of for as long as its process takes to stop.
            foreach (var connection in retired)
            {
                if (!next.ContainsKey(connection.Key)) catalog.RemoveRegistration(connection.Id, connection.Definition.TenantId);
            }

            Volatile.Write(ref _connections, next);
            _registryVersion = snapshot.Version;

            foreach (var connection in retired) await connection.DisposeAsync();

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
