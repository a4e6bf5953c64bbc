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
        var lease = Lease(demands, weight, null);
        return Task.FromResult(lease.Allowed ? RateDecision.Admitted : new RateDecision(false, lease.RefusedDemand, lease.RetryAfterSeconds));
    }

    public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted) => LeaseAsync(demands, weight, wanted, null);

    public Task<RateLease> LeaseAsync(BucketDemand[] demands, double weight, double[] wanted, double[]? returned)
    {
        if (wanted.Length != demands.Length) throw new ArgumentException("One wanted amount per demand.", nameof(wanted));
        if (returned is not null)
        {
            if (returned.Length != demands.Length) throw new ArgumentException("One returned amount per demand.", nameof(returned));
            var now = time.GetTimestamp();
            for (var i = 0; i < demands.Length; i++)
            {
                // Negative or non-finite amounts are ignored: a return can only give back, never take.
                if (!(returned[i] > 0) || double.IsInfinity(returned[i])) continue;
                var demand = demands[i];
                _buckets[(demand.Level, demand.Subject)] = new Bucket(Math.Min(demand.Capacity, Level(demand, now) + returned[i]), demand.Capacity, demand.RefillPerSecond, now);
            }
        }

        return Task.FromResult(Lease(demands, weight, wanted));
    }

    private RateLease Lease(BucketDemand[] demands, double weight, double[]? wanted)
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

        if (refused >= 0) return new RateLease(false, refused, longestWait, null);

        var granted = wanted is null ? null : new double[demands.Length];
        for (var i = 0; i < demands.Length; i++)
        {
            var demand = demands[i];
            var available = Level(demand, now);
            var cost = Math.Min(weight, demand.Capacity);
            // Whole tokens beyond the cost, and only what the bucket holds.
            var take = wanted is null ? cost : Math.Max(cost, Math.Min(wanted[i], cost + Math.Floor(available - cost)));
            if (granted is not null) granted[i] = take;
            _buckets[(demand.Level, demand.Subject)] = new Bucket(available - take, demand.Capacity, demand.RefillPerSecond, now);
        }

        return new RateLease(true, -1, 0, granted);
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
