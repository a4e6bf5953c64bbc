using System.Collections.Concurrent;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Production;

/// <summary>
/// Steady MCP load across the cluster: each client is one agent with one stateful session on one silo, calling
/// <c>list_orders</c> with a unique marker, one call at a time. MCP sessions live in the silo that opened them
/// (the SDK keeps a session's state in memory), so a client whose silo goes away cannot carry its session
/// elsewhere: its call fails, and it opens a new session on the next silo that answers, as an MCP client behind
/// a load balancer would. The guard state it relies on is in grains and PostgreSQL, so nothing else is lost.
/// Clients drift back to their home silo once it answers again, so load stays spread over a rolling restart.
/// </summary>
public sealed class ClusterLoad : IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(45);

    private readonly IReadOnlyList<ProductionSilo> _silos;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Worker> _workers;
    private readonly List<Task> _running = [];
    private readonly string _tenantId;
    private readonly char _markerLetter;
    private long _started;

    public ClusterLoad(IReadOnlyList<ProductionSilo> silos, string tenantId, IReadOnlyList<string> agentTokens)
    {
        _silos = silos;
        _tenantId = tenantId;
        _workers = [.. agentTokens.Select((token, i) => new Worker(i, i % silos.Count, token))];
        _markerLetter = char.ToUpperInvariant(tenantId[0]);
    }

    /// <summary>Markers of calls whose result the client received (allowed by the guard and answered by the tool).</summary>
    public ConcurrentQueue<string> Completed { get; } = new();

    /// <summary>Calls that ended in an exception (connection lost, session gone, timeout), with the silo they were sent to.</summary>
    public ConcurrentQueue<(string Marker, int Silo)> Failed { get; } = new();

    /// <summary>Error results that were neither the tool's answer nor a guard refusal, with the silo and text.</summary>
    public ConcurrentQueue<string> Errors { get; } = new();

    /// <summary>Calls answered with a refusal: there should be none under this load.</summary>
    public ConcurrentQueue<string> Refused { get; } = new();

    public long Started => Interlocked.Read(ref _started);

    /// <summary>Off while a silo is being stopped, so no client moves onto it after its clients were counted.</summary>
    public bool DriftHome { get; set; } = true;

    /// <summary>How many clients have a session on each silo right now (each has at most one call in flight).</summary>
    public int ClientsOn(int silo) => _workers.Count(w => Volatile.Read(ref w.CurrentSilo) == silo);

    public void Start()
    {
        foreach (var worker in _workers) _running.Add(Task.Run(() => RunAsync(worker)));
    }

    /// <summary>Waits until every client has completed at least <paramref name="calls"/> more calls, or throws.</summary>
    public async Task WaitForProgressAsync(int calls, TimeSpan timeout)
    {
        var target = _workers.ToDictionary(w => w, w => Volatile.Read(ref w.CompletedCount) + calls);
        var deadline = DateTime.UtcNow + timeout;
        while (target.Any(t => Volatile.Read(ref t.Key.CompletedCount) < t.Value))
        {
            if (DateTime.UtcNow > deadline)
            {
                var stuck = string.Join(", ", target.Where(t => Volatile.Read(ref t.Key.CompletedCount) < t.Value).Select(t => $"client {t.Key.Id} on silo {Volatile.Read(ref t.Key.CurrentSilo)}"));
                throw new TimeoutException($"No progress within {timeout.TotalSeconds:F0} s for: {stuck}");
            }

            await Task.Delay(100);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(TimeSpan.FromSeconds(90));
    }

    private async Task RunAsync(Worker worker)
    {
        McpClient? client = null;
        var lastHomeAttempt = DateTime.MinValue;
        var counter = 0;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (client is null)
                {
                    client = await ConnectSomewhereAsync(worker);
                    if (client is null)
                    {
                        await Delay(TimeSpan.FromMilliseconds(250));
                        continue;
                    }
                }
                else if (DriftHome && worker.CurrentSilo != worker.Home && DateTime.UtcNow - lastHomeAttempt > TimeSpan.FromSeconds(2))
                {
                    // Drift home: a new session on the home silo, then let the old one go.
                    lastHomeAttempt = DateTime.UtcNow;
                    if (await TryConnectAsync(_silos[worker.Home], worker.Token) is { } home)
                    {
                        await DisposeQuietlyAsync(client);
                        client = home;
                        Volatile.Write(ref worker.CurrentSilo, worker.Home);
                    }
                }

                // A unique, non-PII argument per call, so each can be found in the audit trail by value.
                var marker = $"cust_{_markerLetter}{worker.Id:D2}{++counter:D9}";
                var silo = worker.CurrentSilo;
                Interlocked.Increment(ref _started);
                try
                {
                    using var timeout = new CancellationTokenSource(CallTimeout);
                    var result = await client.CallToolAsync("list_orders", new Dictionary<string, object?> { ["customer_id"] = marker }, cancellationToken: timeout.Token);
                    // A guard refusal carries a code; "no such customer" is the tool's own answer to a marker,
                    // which is a completed (and audited) call like any other.
                    var text = string.Join(' ', result.Content.OfType<ModelContextProtocol.Protocol.TextContentBlock>().Select(b => b.Text));
                    if (result.IsError is not true || text.StartsWith("No customer found", StringComparison.Ordinal))
                    {
                        Completed.Enqueue(marker);
                        Interlocked.Increment(ref worker.CompletedCount);
                    }
                    else if (ControlPlane.Guard.Pipeline.Refusal.Read(result) is { } refusal && refusal.TryGetProperty("code", out var code) && code.GetString() != "GUARD_UNAVAILABLE")
                    {
                        Refused.Enqueue(marker + ": " + text);
                    }
                    else
                    {
                        // The guard could not decide (GUARD_UNAVAILABLE while a dead silo's grains move) or the host
                        // failed the call: the client saw it fail, on this session, which stays usable.
                        Failed.Enqueue((marker, silo));
                        Errors.Enqueue($"silo {silo}: {text}");
                    }
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    Failed.Enqueue((marker, silo));
                    await DisposeQuietlyAsync(client);
                    client = null;
                    Volatile.Write(ref worker.CurrentSilo, -1);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            if (client is not null) await DisposeQuietlyAsync(client);
            Volatile.Write(ref worker.CurrentSilo, -1);
        }
    }

    /// <summary>Home silo first, then the others in turn: the first that opens a session gets the client.</summary>
    private async Task<McpClient?> ConnectSomewhereAsync(Worker worker)
    {
        for (var i = 0; i < _silos.Count && !_stop.IsCancellationRequested; i++)
        {
            var silo = _silos[(worker.Home + i) % _silos.Count];
            if (await TryConnectAsync(silo, worker.Token) is { } client)
            {
                Volatile.Write(ref worker.CurrentSilo, silo.Index);
                return client;
            }
        }

        return null;
    }

    private async Task<McpClient?> TryConnectAsync(ProductionSilo silo, string token)
    {
        if (!silo.IsRunning) return null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            return await PostgresClusterFixture.ConnectAsync(silo, token, timeout.Token);
        }
        catch (Exception) when (!_stop.IsCancellationRequested)
        {
            return null;
        }
    }

    private async Task Delay(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Closes a client whose silo may be gone, without waiting long or failing.</summary>
    internal static async Task DisposeQuietlyAsync(McpClient client)
    {
        try
        {
            await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
            // The session's silo may be gone; there is nothing to close.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }

    public string TenantId => _tenantId;

    private sealed class Worker(int id, int home, string token)
    {
        public int Id { get; } = id;

        public int Home { get; } = home;

        public string Token { get; } = token;

        public int CurrentSilo = -1;

        public int CompletedCount;
    }
}
