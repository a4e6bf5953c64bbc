using ControlPlane.RateLimits;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Limits;

/// <summary>
/// Tokens this silo has taken from tenants' bucket grains ahead of need, so that most calls are decided here without
/// a grain round trip (the largest single cost of a guarded read).
/// </summary>
/// <remarks>
/// The grain stays the only source of tokens, so the cluster never admits more than a bucket's budget; what a lease
/// can cost is refusing early, while another silo holds tokens it has not spent yet. Three things bound that:
/// <list type="bullet">
/// <item>A lease grows only while this silo spends it: it starts at the call's own cost, doubles when used up within
/// its lifetime and shrinks to what was spent when it expires, and never exceeds a tenth of the bucket or what the
/// bucket refills in one lifetime. A bucket that does not refill is never leased: a budget stays exact.</item>
/// <item>A lease lives <see cref="RateLimitOptions.LeaseLifetime"/> (default 1 s); what is left then goes back to the
/// bucket with this silo's next renewal of it.</item>
/// <item>A lease is only good for the bucket shape it was granted under, so an operator who tightens a limit stops
/// leased tokens on the next call, on every silo (policy reaches them within milliseconds).</item>
/// </list>
/// A call takes from all its buckets or none: a local shortfall on any bucket sends the call to the grain for those
/// buckets, with the others held back meanwhile and handed back if the grain refuses.
/// </remarks>
public sealed class RateLimitLeases(
    IGrainFactory grains,
    IOptions<RateLimitOptions> options,
    [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time,
    RateLimitBridge? bridge = null)
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    // A call that finds a lease being renewed by another call waits for it, then looks again; after this many
    // looks it asks the grain itself.
    private const int MaxWaits = 2;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TenantLeases> _tenants = new(StringComparer.Ordinal);
    private long _grainRoundTrips;

    /// <summary>Calls this silo sent to a bucket grain since it started (every other call was decided on a lease).</summary>
    public long GrainRoundTrips => Interlocked.Read(ref _grainRoundTrips);

    /// <summary>Decides one call against its buckets; the grain is asked only when a local lease falls short.</summary>
    public async ValueTask<RateDecision> TakeAsync(string tenantId, BucketDemand[] demands, double weight, CancellationToken cancellationToken)
    {
        var lifetime = options.Value.LeaseLifetime;
        if (lifetime <= TimeSpan.Zero)
        {
            // Exact: a lease of exactly each bucket's cost, which is what the grain's TakeAsync does.
            Interlocked.Increment(ref _grainRoundTrips);
            var costs = new double[demands.Length];
            for (var i = 0; i < costs.Length; i++) costs[i] = Math.Min(weight, demands[i].Capacity);
            var exact = await LeaseOnceRetriedAsync(grains.GetGrain<ITenantRateLimitGrain>(tenantId), demands, weight, costs, null).WaitAsync(cancellationToken);
            return exact.Allowed ? RateDecision.Admitted : new RateDecision(false, exact.RefusedDemand, exact.RetryAfterSeconds);
        }

        if (bridge is not null && bridge.ShouldBypass(tenantId) && bridge.Take(tenantId, demands, weight) is { } bridged) return bridged;

        var tenant = _tenants.GetOrAdd(tenantId, static _ => new TenantLeases());
        var lifetimeTicks = (long)(lifetime.TotalSeconds * time.TimestampFrequency);
        for (var waits = 0; ; waits++)
        {
            Plan plan;
            lock (tenant)
            {
                var now = time.GetTimestamp();
                tenant.SweepIfDue(now, time);
                plan = tenant.Plan(demands, weight, now, lifetimeTicks, lifetime.TotalSeconds, waits < MaxWaits);
            }

            if (plan.Admitted) return RateDecision.Admitted;
            if (plan.WaitFor is { } renewing)
            {
                await renewing.WaitAsync(cancellationToken);
                continue;
            }

            try
            {
                var decision = await RenewAsync(tenant, grains.GetGrain<ITenantRateLimitGrain>(tenantId), demands, weight, plan.Renewal, lifetimeTicks, cancellationToken);
                bridge?.Close(tenantId);
                return decision;
            }
            catch (Exception ex) when (bridge is not null && RateLimitBridge.IsUnreachable(ex) && bridge.Take(tenantId, demands, weight) is { } decided)
            {
                return decided;
            }
        }
    }

    private async Task<RateDecision> RenewAsync(
        TenantLeases tenant, ITenantRateLimitGrain grain, BucketDemand[] demands, double weight, Renewal renewal, long lifetimeTicks, CancellationToken cancellationToken)
    {
        RateLease? lease = null;
        Settled settled;
        Interlocked.Increment(ref _grainRoundTrips);
        try
        {
            lease = await LeaseOnceRetriedAsync(grain, renewal.Demands, weight, renewal.Wanted, renewal.Returned).WaitAsync(cancellationToken);
        }
        finally
        {
            // Also when the grain could not be reached: held tokens go back and waiting calls look again.
            lock (tenant) settled = tenant.Settle(demands, weight, renewal, lease, time.GetTimestamp(), lifetimeTicks);
        }

        if (lease.Allowed || settled.Admitted) return RateDecision.Admitted;
        if (settled.Renewing is { } renewing)
        {
            // The grain refused while this silo's lease on the bucket was being renewed: that lease may have taken
            // the bucket's last tokens, which this call can spend.
            await renewing.WaitAsync(cancellationToken);
            lock (tenant)
            {
                if (tenant.TrySpend(demands, weight, time.GetTimestamp(), lifetimeTicks)) return RateDecision.Admitted;
            }
        }

        return new RateDecision(false, renewal.Indices[lease.RefusedDemand], lease.RetryAfterSeconds);
    }

    /// <summary>
    /// One retry when Orleans rejects the message because the grain's silo is leaving the cluster (a rolling
    /// restart): the retry reaches the grain's new activation. At worst tokens are taken twice, which errs on the
    /// strict side; a silo that is really gone fails both attempts and the guard refuses as undecided. The retry
    /// returns no expired tokens: the first attempt may have returned them, and returning them twice would let the
    /// bucket admit more than it held.
    /// </summary>
    private static async Task<RateLease> LeaseOnceRetriedAsync(ITenantRateLimitGrain grain, BucketDemand[] demands, double weight, double[] wanted, double[]? returned)
    {
        try
        {
            return await grain.LeaseAsync(demands, weight, wanted, returned);
        }
        catch (OrleansMessageRejectionException)
        {
            return await grain.LeaseAsync(demands, weight, wanted, null);
        }
    }

    /// <summary>The largest lease for a bucket: a tenth of it, or what it refills in one lifetime; 1 (no lease) if it does not refill.</summary>
    internal static double LargestLease(in BucketDemand demand, double lifetimeSeconds) =>
        demand.RefillPerSecond > 0 ? Math.Max(1, Math.Floor(Math.Min(demand.Capacity / 10, demand.RefillPerSecond * lifetimeSeconds))) : 1;

    /// <summary>What a call must ask the grain for: the buckets it fell short on, and how many tokens to lease for each.</summary>
    /// <remarks>
    /// <c>Leasing[k]</c> says whether this call renews the silo's lease on that bucket; a call that found a renewal
    /// already under way and waited long enough asks for its own cost only, so one silo never holds more than one
    /// lease of a bucket (many concurrent full leases would drain the bucket into one silo while calls elsewhere,
    /// and the concurrent ones, are refused).
    /// </remarks>
    private readonly record struct Renewal(BucketDemand[] Demands, int[] Indices, double[] Wanted, double[]? Returned, bool[] Leasing, bool[] Held, TaskCompletionSource Done);

    private readonly record struct Plan(bool Admitted, Renewal Renewal, Task? WaitFor);

    /// <summary>After a renewal: whether a refused call could be paid from this silo's leases, or which renewal to wait for first.</summary>
    private readonly record struct Settled(bool Admitted, Task? Renewing);

    /// <summary>One tenant's leases on this silo. Guarded by locking the instance.</summary>
    private sealed class TenantLeases
    {
        private readonly Dictionary<(BucketLevel Level, string? Subject), Allotment> _allotments = [];
        private long _lastSweep;

        public Plan Plan(BucketDemand[] demands, double weight, long now, long lifetimeTicks, double lifetimeSeconds, bool mayWait)
        {
            var shortfall = 0;
            Task? renewing = null;
            for (var i = 0; i < demands.Length; i++)
            {
                var allotment = Get(demands[i]);
                if (allotment.Usable(demands[i], now, lifetimeTicks) >= Cost(demands[i], weight)) continue;
                shortfall++;
                renewing ??= allotment.Renewing?.Task;
            }

            if (shortfall == 0)
            {
                foreach (var demand in demands) Get(demand).Spend(Cost(demand, weight));
                return new Plan(true, default, null);
            }

            // Another call is already renewing a lease this call needs: its tokens will likely cover this call too.
            if (renewing is not null && mayWait) return new Plan(false, default, renewing);

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var asked = new BucketDemand[shortfall];
            var indices = new int[shortfall];
            var wanted = new double[shortfall];
            var leasing = new bool[shortfall];
            double[]? returned = null;
            var held = new bool[demands.Length];
            var n = 0;
            for (var i = 0; i < demands.Length; i++)
            {
                var demand = demands[i];
                var allotment = Get(demand);
                var cost = Cost(demand, weight);
                if (allotment.Usable(demand, now, lifetimeTicks) >= cost)
                {
                    // Held back for this call while the grain is asked about the others; handed back if it refuses.
                    allotment.Spend(cost);
                    held[i] = true;
                    continue;
                }

                asked[n] = demand;
                indices[n] = i;
                if (allotment.Renewing is null)
                {
                    wanted[n] = Math.Max(cost, allotment.NextLease(demand, now, lifetimeTicks, lifetimeSeconds));
                    leasing[n] = true;
                    allotment.Renewing = done;
                    if (allotment.TakeExpiredUnspent(demand, now, lifetimeTicks) is > 0 and var unspent) (returned ??= new double[shortfall])[n] = unspent;
                }
                else
                {
                    wanted[n] = cost;
                }

                n++;
            }

            return new Plan(false, new Renewal(asked, indices, wanted, returned, leasing, held, done), null);
        }

        /// <summary>
        /// Records what the grain granted (the call's own cost already spent), or hands held tokens back. When the grain
        /// refused, says whether this silo's leases can pay for the call after all, or which renewal may bring them.
        /// </summary>
        /// <remarks>
        /// A refusal can cross a renewal by another call of this silo that took the bucket's last tokens: refusing
        /// then would strand those tokens here, unspent, while the calls they were leased for go away refused.
        /// </remarks>
        public Settled Settle(BucketDemand[] demands, double weight, Renewal renewal, RateLease? lease, long now, long lifetimeTicks)
        {
            for (var k = 0; k < renewal.Demands.Length; k++)
            {
                var demand = renewal.Demands[k];
                var allotment = Get(demand);
                if (ReferenceEquals(allotment.Renewing, renewal.Done)) allotment.Renewing = null;
                if (renewal.Leasing[k] && lease is { Allowed: true, Granted: { } granted }) allotment.Renew(demand, granted[k], Cost(demand, weight), now, lifetimeTicks);
            }

            var settled = default(Settled);
            if (lease is not { Allowed: true })
            {
                for (var i = 0; i < demands.Length; i++)
                {
                    if (renewal.Held[i]) Get(demands[i]).Refund(Cost(demands[i], weight));
                }

                // Only a refusal: a grain that could not be reached leaves the call undecided, and undecided fails closed.
                if (lease is not null)
                {
                    settled = TrySpend(demands, weight, now, lifetimeTicks) ? new Settled(true, null) : new Settled(false, Get(renewal.Demands[lease.RefusedDemand]).Renewing?.Task);
                }
            }

            renewal.Done.TrySetResult();
            return settled;
        }

        public bool TrySpend(BucketDemand[] demands, double weight, long now, long lifetimeTicks)
        {
            foreach (var demand in demands)
            {
                if (Get(demand).Usable(demand, now, lifetimeTicks) < Cost(demand, weight)) return false;
            }

            foreach (var demand in demands) Get(demand).Spend(Cost(demand, weight));
            return true;
        }

        public void SweepIfDue(long now, TimeProvider time)
        {
            if (_lastSweep == 0) _lastSweep = now;
            if (time.GetElapsedTime(_lastSweep, now) < SweepInterval) return;
            _lastSweep = now;
            List<(BucketLevel, string?)>? idle = null;
            foreach (var (key, allotment) in _allotments)
            {
                if (allotment.Renewing is null && time.GetElapsedTime(allotment.LeasedAt, now) >= SweepInterval) (idle ??= []).Add(key);
            }

            if (idle is null) return;
            foreach (var key in idle) _allotments.Remove(key);
        }

        private static double Cost(in BucketDemand demand, double weight) => Math.Min(weight, demand.Capacity);

        private Allotment Get(in BucketDemand demand)
        {
            var key = (demand.Level, demand.Subject);
            if (!_allotments.TryGetValue(key, out var allotment)) _allotments[key] = allotment = new Allotment();
            return allotment;
        }
    }

    /// <summary>This silo's lease on one bucket.</summary>
    private sealed class Allotment
    {
        private double _tokens;
        private double _spent;
        private double _size;
        private double _capacity = double.NaN;
        private double _refill = double.NaN;

        public long LeasedAt { get; private set; }

        public TaskCompletionSource? Renewing { get; set; }

        /// <summary>Tokens this silo may spend now: none once the lease expired or the bucket's shape changed.</summary>
        public double Usable(in BucketDemand demand, long now, long lifetimeTicks) =>
            demand.Capacity == _capacity && demand.RefillPerSecond == _refill && now - LeasedAt < lifetimeTicks ? _tokens : 0;

        public void Spend(double cost)
        {
            _tokens -= cost;
            _spent += cost;
        }

        public void Refund(double cost)
        {
            _tokens += cost;
            _spent -= cost;
        }

        /// <summary>The next lease: twice the last if it ran out early, what was spent if it expired; never above the largest.</summary>
        public double NextLease(in BucketDemand demand, long now, long lifetimeTicks, double lifetimeSeconds)
        {
            var largest = LargestLease(demand, lifetimeSeconds);
            if (_size == 0 || demand.Capacity != _capacity || demand.RefillPerSecond != _refill) return 1;
            var next = now - LeasedAt < lifetimeTicks ? _size * 2 : Math.Max(1, _spent);
            return Math.Min(largest, next);
        }

        /// <summary>
        /// Tokens of a lease that expired unspent, taken out of this silo's hands so they are sent back to the bucket
        /// once: without that, a long burst against a small bucket would lose up to a lease per silo per lifetime and
        /// refuse callers that had not spent their budget. Only under the shape they were granted under: a limit
        /// the operator changed starts afresh.
        /// </summary>
        public double TakeExpiredUnspent(in BucketDemand demand, long now, long lifetimeTicks)
        {
            if (_tokens <= 0 || now - LeasedAt < lifetimeTicks || demand.Capacity != _capacity || demand.RefillPerSecond != _refill) return 0;
            var unspent = _tokens;
            _tokens = 0;
            return unspent;
        }

        public void Renew(in BucketDemand demand, double granted, double cost, long now, long lifetimeTicks)
        {
            // Tokens still good from the old lease (below the call's cost, or refunded meanwhile) are kept with the new ones.
            _tokens = Usable(demand, now, lifetimeTicks) + granted - cost;
            _spent = cost;
            _size = granted;
            _capacity = demand.Capacity;
            _refill = demand.RefillPerSecond;
            LeasedAt = now;
        }
    }
}
