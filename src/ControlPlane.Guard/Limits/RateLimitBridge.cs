using System.Collections.Concurrent;
using ControlPlane.RateLimits;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;

namespace ControlPlane.Guard.Limits;

/// <summary>
/// Decides a tenant's calls on this silo while its bucket grain cannot be reached. When the silo holding the grain
/// crashes, every renewal is rejected until the cluster declares that silo dead (seconds); refusing all of the tenant's
/// calls meanwhile would turn one silo's crash into a tenant-wide outage on every silo.
/// </summary>
/// <remarks>
/// The bridge admits calls at this silo's share of each bucket's refill rate (refill / silos in the cluster), starting
/// with its share of one lease lifetime: the cluster together stays within each bucket's refill rate, which the bucket
/// would have admitted anyway, so no budget is overspent. It lasts <see cref="RateLimitOptions.UnreachableBridge"/> at
/// most; after that, or for a bucket that never refills (an exact budget), the call is refused as undecided. One call
/// in each <see cref="ProbeInterval"/> still tries the grain, and the first that reaches it ends the bridge.
/// </remarks>
public sealed partial class RateLimitBridge(
    IOptions<RateLimitOptions> options,
    [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time,
    IClusterMembershipService? membership = null,
    ILogger<RateLimitBridge>? logger = null)
{
    /// <summary>How often, while bridging, one call tries the grain again.</summary>
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);

    private readonly ConcurrentDictionary<string, TenantBridge> _tenants = new(StringComparer.Ordinal);
    private readonly ILogger _logger = logger ?? NullLogger<RateLimitBridge>.Instance;

    /// <summary>Whether <paramref name="ex"/> says the grain's silo could not be reached (rather than that the grain refused or failed).</summary>
    public static bool IsUnreachable(Exception ex) =>
        ex is OrleansMessageRejectionException or SiloUnavailableException or ConnectionFailedException or TimeoutException
        || (ex.InnerException is { } inner && IsUnreachable(inner));

    /// <summary>Whether this call should be decided here without asking the grain (bridging, and another call probed it just now).</summary>
    public bool ShouldBypass(string tenantId)
    {
        if (_tenants.IsEmpty || !_tenants.TryGetValue(tenantId, out var bridge)) return false;
        var now = time.GetTimestamp();
        lock (bridge)
        {
            if (time.GetElapsedTime(bridge.OpenedAt, now) > options.Value.UnreachableBridge) return false;
            if (time.GetElapsedTime(bridge.ProbedAt, now) < ProbeInterval) return true;
            bridge.ProbedAt = now;
            return false;
        }
    }

    /// <summary>The grain answered: the tenant's calls go to it again.</summary>
    public void Close(string tenantId)
    {
        if (!_tenants.IsEmpty && _tenants.TryRemove(tenantId, out _)) LogClosed(_logger, tenantId);
    }

    /// <summary>
    /// Decides a call here because the grain could not be reached; null when the bridge may not decide it (over its
    /// time, disabled, or a bucket that does not refill), and the call is undecided.
    /// </summary>
    public RateDecision? Take(string tenantId, BucketDemand[] demands, double weight)
    {
        var window = options.Value.UnreachableBridge;
        if (window <= TimeSpan.Zero) return null;
        foreach (var demand in demands)
        {
            if (demand.RefillPerSecond <= 0) return null;
        }

        var now = time.GetTimestamp();
        var bridge = _tenants.GetOrAdd(tenantId, static (id, state) =>
        {
            LogOpened(state.Logger, id, state.Window.TotalSeconds);
            return new TenantBridge(state.Now);
        }, (Logger: _logger, Window: window, Now: now));

        var silos = Math.Max(1, membership?.CurrentSnapshot.Members.Values.Count(m => m.Status == SiloStatus.Active) ?? 1);
        var lifetime = Math.Max(options.Value.LeaseLifetime.TotalSeconds, ProbeInterval.TotalSeconds);
        lock (bridge)
        {
            if (time.GetElapsedTime(bridge.OpenedAt, now) > window) return null;

            var buckets = new LocalBucket[demands.Length];
            var costs = new double[demands.Length];
            for (var i = 0; i < demands.Length; i++)
            {
                var demand = demands[i];
                var rate = demand.RefillPerSecond / silos;
                var capacity = Math.Max(1, Math.Min(demand.Capacity, demand.RefillPerSecond * lifetime) / silos);
                var key = ((int)demand.Level).ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + demand.Subject;
                if (!bridge.Buckets.TryGetValue(key, out var bucket))
                {
                    bucket = new LocalBucket { Tokens = capacity, RefilledAt = now };
                    bridge.Buckets[key] = bucket;
                }

                bucket.Tokens = Math.Min(capacity, bucket.Tokens + time.GetElapsedTime(bucket.RefilledAt, now).TotalSeconds * rate);
                bucket.RefilledAt = now;
                buckets[i] = bucket;
                costs[i] = Math.Min(weight, capacity);
                if (bucket.Tokens < costs[i]) return new RateDecision(false, i, (costs[i] - bucket.Tokens) / rate);
            }

            for (var i = 0; i < buckets.Length; i++) buckets[i].Tokens -= costs[i];
            return RateDecision.Admitted;
        }
    }

    private sealed class TenantBridge(long openedAt)
    {
        public long OpenedAt { get; } = openedAt;

        public long ProbedAt { get; set; } = openedAt;

        public Dictionary<string, LocalBucket> Buckets { get; } = new(StringComparer.Ordinal);
    }

    private sealed class LocalBucket
    {
        public double Tokens { get; set; }

        public long RefilledAt { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Tenant {TenantId}'s rate-limit grain cannot be reached (its silo is likely down); this silo decides the tenant's calls at its share of each bucket's refill rate for up to {Seconds} s.")]
    private static partial void LogOpened(ILogger logger, string tenantId, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Tenant {TenantId}'s rate-limit grain answers again; its calls are decided by it.")]
    private static partial void LogClosed(ILogger logger, string tenantId);
}
