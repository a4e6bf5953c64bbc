using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;
using Polly;
using Polly.CircuitBreaker;
using Polly.RateLimiting;
using Polly.Timeout;

namespace ControlPlane.Guard.Limits;

/// <summary>Limits for one downstream tool server.</summary>
public sealed class DownstreamLimits
{
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Calls in flight to this server at once; more wait in a short queue, then fail fast.</summary>
    public int MaxConcurrency { get; set; } = 64;

    public int QueueLimit { get; set; } = 64;

    /// <summary>The circuit opens when this share of calls in the sampling window failed (exceptions and timeouts).</summary>
    public double FailureRatio { get; set; } = 0.5;

    public int MinimumThroughput { get; set; } = 10;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>Downstream protection settings, bound from <c>ControlPlane:Downstream</c>.</summary>
public sealed class DownstreamOptions
{
    public const string SectionName = "ControlPlane:Downstream";

    public DownstreamLimits Defaults { get; set; } = new();

    /// <summary>Per server id, replacing the defaults.</summary>
    public Dictionary<string, DownstreamLimits> Servers { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>The downstream did not answer in time, is being shed, or its circuit is open. Nothing more is sent to it now.</summary>
public sealed class DownstreamUnavailableException(string serverId, string why, TimeSpan retryAfter, Exception inner)
    : Exception($"Tool server '{serverId}' is unavailable: {why}.", inner)
{
    public string ServerId { get; } = serverId;

    public string Why { get; } = why;

    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// A Polly pipeline per tool server: a concurrency limit, a circuit breaker and a timeout, so an unhealthy
/// downstream fails fast with a retry_after instead of piling calls onto it.
/// </summary>
public sealed class DownstreamProtection(IOptions<DownstreamOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, (ResiliencePipeline Pipeline, DownstreamLimits Limits)> _pipelines = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CircuitState> _circuits = new(StringComparer.Ordinal);

    /// <summary>Each server's circuit as its breaker last reported it (servers not called yet are absent), for metrics.</summary>
    public IEnumerable<KeyValuePair<string, CircuitState>> Circuits => _circuits;

    public ValueTask<CallToolResult> ExecuteAsync(string serverId, Func<CancellationToken, ValueTask<CallToolResult>> call, CancellationToken cancellationToken) =>
        ExecuteAsync(serverId, null, call, cancellationToken);

    /// <summary>
    /// Runs a call under the limits of its server. A tenant's own registration of a server (another process, another
    /// credential) has a circuit of its own, keyed <c>server@tenant</c>, so its failures never open the global one's.
    /// </summary>
    public ValueTask<CallToolResult> ExecuteAsync(string serverId, string? registrationTenantId, Func<CancellationToken, ValueTask<CallToolResult>> call, CancellationToken cancellationToken) =>
        ExecuteAsync(serverId, registrationTenantId, call, static (call, ct) => call(ct), cancellationToken);

    /// <summary>
    /// Runs any request to a server (a tool call, a resource read, a prompt) under that server's limits: one server, one
    /// set of limits and one circuit, whatever the kind. <paramref name="state"/> spares the caller a closure.
    /// </summary>
    public async ValueTask<TResult> ExecuteAsync<TState, TResult>(string serverId, string? registrationTenantId, TState state,
        Func<TState, CancellationToken, ValueTask<TResult>> call, CancellationToken cancellationToken)
    {
        var circuit = registrationTenantId is null ? serverId : serverId + "@" + registrationTenantId;
        var (pipeline, limits) = _pipelines.GetOrAdd(circuit, static (key, state) => state.Self.Build(key, state.ServerId), (Self: this, ServerId: serverId));
        _circuits.TryAdd(circuit, CircuitState.Closed);
        try
        {
            return await pipeline.ExecuteAsync(static (s, ct) => s.call(s.state, ct), (call, state), cancellationToken);
        }
        catch (BrokenCircuitException ex)
        {
            throw new DownstreamUnavailableException(serverId, "its circuit is open after repeated failures", ex.RetryAfter ?? limits.BreakDuration, ex);
        }
        catch (TimeoutRejectedException ex)
        {
            throw new DownstreamUnavailableException(serverId, $"it did not answer within {limits.Timeout.TotalSeconds:0.#} s", TimeSpan.FromSeconds(5), ex);
        }
        catch (RateLimiterRejectedException ex)
        {
            throw new DownstreamUnavailableException(serverId, "too many calls are already waiting for it", ex.RetryAfter ?? TimeSpan.FromSeconds(1), ex);
        }
    }

    private (ResiliencePipeline, DownstreamLimits) Build(string circuit, string serverId)
    {
        var limits = options.Value.Servers.TryGetValue(serverId, out var own) ? own : options.Value.Defaults;
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddConcurrencyLimiter(limits.MaxConcurrency, limits.QueueLimit)
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = limits.FailureRatio,
                MinimumThroughput = limits.MinimumThroughput,
                SamplingDuration = limits.SamplingDuration,
                BreakDuration = limits.BreakDuration,
                // A cancelled call (client or kill switch) says nothing about the downstream's health.
                ShouldHandle = new PredicateBuilder().Handle<Exception>(static ex => ex is not OperationCanceledException || ex is TimeoutRejectedException),
                OnOpened = _ => Track(circuit, CircuitState.Open),
                OnClosed = _ => Track(circuit, CircuitState.Closed),
                OnHalfOpened = _ => Track(circuit, CircuitState.HalfOpen),
            })
            .AddTimeout(limits.Timeout)
            .Build();
        return (pipeline, limits);
    }

    private ValueTask Track(string serverId, CircuitState state)
    {
        _circuits[serverId] = state;
        return ValueTask.CompletedTask;
    }
}
