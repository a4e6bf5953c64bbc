namespace ControlPlane.Guard.Limits;

/// <summary>A bucket: how many calls may burst, and how fast the allowance comes back.</summary>
public sealed class BucketShape
{
    public double Capacity { get; set; }

    public double RefillPerSecond { get; set; }
}

/// <summary>
/// Default buckets for tenants without their own limits, and per-tool weights. Bound from
/// <c>ControlPlane:RateLimits</c>. A null shape means no default bucket at that level.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "ControlPlane:RateLimits";

    public BucketShape? Tenant { get; set; } = new() { Capacity = 2000, RefillPerSecond = 500 };

    public BucketShape? Agent { get; set; } = new() { Capacity = 300, RefillPerSecond = 50 };

    public BucketShape? User { get; set; } = new() { Capacity = 300, RefillPerSecond = 50 };

    public BucketShape? Tool { get; set; }

    /// <summary>
    /// How long tokens a silo leased ahead of need stay spendable there (see <c>RateLimitLeases</c>); zero asks the
    /// bucket grain on every call, which is exact across silos at the cost of a round trip per call.
    /// </summary>
    public TimeSpan LeaseLifetime { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a silo may decide a tenant's calls by itself, at its share of each bucket's refill rate, while the
    /// tenant's bucket grain cannot be reached (its silo crashed and is not yet declared dead); zero refuses those
    /// calls as undecided instead. See <c>RateLimitBridge</c>.
    /// </summary>
    public TimeSpan UnreachableBridge { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Tokens a call of a tool costs (<c>serverId/toolName</c>); 1 when not listed.</summary>
    public Dictionary<string, double> ToolWeights { get; set; } = new(StringComparer.Ordinal);
}
