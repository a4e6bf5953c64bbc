namespace ControlPlane.RateLimits;

/// <summary>
/// A token bucket's shape for one tenant: per tenant, per agent, per user or per tool. Without a subject it
/// applies to each agent (user, tool) of the tenant; with one, to that agent (user, <c>server/tool</c>) only.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.RateLimitSetting")]
public sealed record RateLimitSetting(
    [property: Id(0)] string TenantId,
    [property: Id(1)] string Scope,
    [property: Id(2)] string? Subject,
    [property: Id(3)] double Capacity,
    [property: Id(4)] double RefillPerSecond,
    [property: Id(5)] string SetBy,
    [property: Id(6)] DateTimeOffset SetAt)
{
    public static readonly string[] Scopes = ["tenant", "agent", "user", "tool"];

    public string Key => $"{TenantId}|{Scope}|{Subject ?? "*"}";
}

/// <summary>The level a bucket counts calls at, inside one tenant.</summary>
public enum BucketLevel : byte
{
    Tenant,
    Agent,
    User,
    Tool,
}

/// <summary>
/// One bucket a call must take from: its level, whose bucket it is (the agent, user or <c>server/tool</c>; null for
/// the tenant's own), and its shape as policy has it now, so a changed limit applies on the next call.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.BucketDemand")]
public readonly record struct BucketDemand(
    [property: Id(0)] BucketLevel Level,
    [property: Id(1)] string? Subject,
    [property: Id(2)] double Capacity,
    [property: Id(3)] double RefillPerSecond);

/// <summary>
/// Whether a call may go: when refused, which demand (its index) refused, and the wait after which that bucket
/// will hold enough again.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.RateDecision")]
public sealed record RateDecision(
    [property: Id(0)] bool Allowed,
    [property: Id(1)] int RefusedDemand,
    [property: Id(2)] double RetryAfterSeconds)
{
    public static readonly RateDecision Admitted = new(true, -1, 0);
}

/// <summary>
/// A grant of tokens a silo may spend locally: when allowed, how many tokens each demand's bucket handed over (at least
/// the call's own cost); when refused, which demand refused and how long until its bucket holds the call's cost.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.RateLease")]
public sealed record RateLease(
    [property: Id(0)] bool Allowed,
    [property: Id(1)] int RefusedDemand,
    [property: Id(2)] double RetryAfterSeconds,
    [property: Id(3)] double[]? Granted);

/// <summary>
/// Every token bucket of one tenant, owned by one grain so budgets are exact across the cluster and one call
/// costs one round trip. A call takes from all its buckets or from none, so a refused call has nothing to hand back;
/// a silo hands back the leased tokens it did not spend (see <see cref="LeaseAsync"/>).
/// Levels are soft state: after a failover the buckets start full again, which admits one burst at worst.
/// </summary>
[Alias("cp.ITenantRateLimitGrain")]
public interface ITenantRateLimitGrain : IGrainWithStringKey
{
    [Alias("Take")]
    Task<RateDecision> TakeAsync([Immutable] BucketDemand[] demands, double weight);

    /// <summary>
    /// Like <see cref="TakeAsync"/> (all or nothing on the call's cost), and also hands over up to
    /// <paramref name="wanted"/> tokens per bucket for the caller's silo to spend on later calls without a round trip.
    /// Extra tokens come only from what the bucket holds; they never make a call refused.
    /// </summary>
    /// <param name="returned">
    /// Tokens of the caller's earlier leases that expired unspent, per bucket (or null): they go back into the bucket
    /// (never above its capacity) before the call is decided. The caller sends each unspent token back at most once,
    /// so a bucket never admits more than it held.
    /// </param>
    [Alias("LeaseReturning")]
    Task<RateLease> LeaseAsync([Immutable] BucketDemand[] demands, double weight, [Immutable] double[] wanted, [Immutable] double[]? returned);

    /// <summary>The lease call of silos built before unspent tokens were returned: kept so they work during a rolling upgrade.</summary>
    [Alias("Lease")]
    Task<RateLease> LeaseAsync([Immutable] BucketDemand[] demands, double weight, [Immutable] double[] wanted);
}
