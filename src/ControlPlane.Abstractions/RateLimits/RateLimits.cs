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

[GenerateSerializer, Immutable, Alias("cp.BucketResult")]
public sealed record BucketResult(
    [property: Id(0)] bool Allowed,
    [property: Id(1)] double RetryAfterSeconds);

/// <summary>
/// One token bucket, owned by one grain so that it is exact across the cluster. Its level is soft state:
/// after a failover a bucket starts full again, which errs on the side of admitting a burst once.
/// </summary>
[Alias("cp.ITokenBucketGrain")]
public interface ITokenBucketGrain : IGrainWithStringKey
{
    [Alias("Take")]
    Task<BucketResult> TakeAsync(double weight, double capacity, double refillPerSecond);

    /// <summary>Gives back tokens taken for a call that another bucket then refused.</summary>
    [Alias("Refund"), OneWay]
    Task RefundAsync(double weight);
}
