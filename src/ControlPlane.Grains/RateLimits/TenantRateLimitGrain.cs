using ControlPlane.RateLimits;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Grains.RateLimits;

/// <summary>
/// The token buckets of one tenant. A bucket that has refilled completely is the same as one never used, so
/// buckets are forgotten once full: memory follows the agents, users and tools calling right now.
/// </summary>
public sealed class TenantRateLimitGrain([FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time) : Grain, ITenantRateLimitGrain
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private readonly Dictionary<(BucketLevel Level, string? Subject), Bucket> _buckets = [];
    private long _lastSweep = time.GetTimestamp();

    public Task<RateDecision> TakeAsync(BucketDemand[] demands, double weight)
    {
        var now = time.GetTimestamp();
        SweepIfDue(now);

        // All or nothing: first see whether every bucket can pay, and only then take from each.
        var refused = -1;
        var longestWait = 0d;
        for (var i = 0; i < demands.Length; i++)
        {
            var demand = demands[i];
            var available = Level(demand, now);
            var cost = Math.Min(weight, demand.Capacity);
            if (available >= cost) continue;

            // Exactly when enough will have dripped back in: an assistant that waits this long succeeds.
            var wait = demand.RefillPerSecond > 0 ? (cost - available) / demand.RefillPerSecond : double.PositiveInfinity;
            if (refused < 0 || wait > longestWait)
            {
                refused = i;
                longestWait = wait;
            }
        }

        if (refused >= 0) return Task.FromResult(new RateDecision(false, refused, longestWait));

        foreach (var demand in demands)
        {
            var level = Level(demand, now) - Math.Min(weight, demand.Capacity);
            _buckets[(demand.Level, demand.Subject)] = new Bucket(level, demand.Capacity, demand.RefillPerSecond, now);
        }

        return Task.FromResult(RateDecision.Admitted);
    }

    /// <summary>The bucket's level now, refilled for the time since it was last touched, under its current shape.</summary>
    private double Level(in BucketDemand demand, long now)
    {
        if (!_buckets.TryGetValue((demand.Level, demand.Subject), out var bucket)) return demand.Capacity;
        var elapsed = Math.Max(0, time.GetElapsedTime(bucket.UpdatedAt, now).TotalSeconds);
        return Math.Min(demand.Capacity, bucket.Tokens + (elapsed * demand.RefillPerSecond));
    }

    private void SweepIfDue(long now)
    {
        if (time.GetElapsedTime(_lastSweep, now) < SweepInterval) return;
        _lastSweep = now;
        List<(BucketLevel, string?)>? full = null;
        foreach (var (key, bucket) in _buckets)
        {
            var elapsed = Math.Max(0, time.GetElapsedTime(bucket.UpdatedAt, now).TotalSeconds);
            if (bucket.Tokens + (elapsed * bucket.RefillPerSecond) >= bucket.Capacity) (full ??= []).Add(key);
        }

        if (full is null) return;
        foreach (var key in full) _buckets.Remove(key);
    }

    private readonly record struct Bucket(double Tokens, double Capacity, double RefillPerSecond, long UpdatedAt);
}
