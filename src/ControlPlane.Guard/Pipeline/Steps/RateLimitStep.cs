using ControlPlane.Guard.Limits;
using ControlPlane.Guard.State;
using ControlPlane.RateLimits;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// Step 6: token buckets per tenant, agent, user and tool, each owned by one grain so the budget is exact
/// across silos. The buckets are asked in parallel (one round trip, not four); if any refuses, tokens the
/// others gave are handed back, and the refusal says how long to wait for the bucket that refused.
/// </summary>
public sealed class RateLimitStep(IGrainFactory grains, GuardStateCache guardState, IOptions<RateLimitOptions> options) : IGuardStep
{
    public string Name => "rate-limit";

    public async ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var policy = guardState.Policy;
        var id = call.Identity;
        var toolKey = call.Tool.ServerId + "/" + call.Tool.ToolName;
        var weight = settings.ToolWeights.TryGetValue(toolKey, out var w) ? w : 1;

        Span<(string Scope, string Key, double Capacity, double Refill)> buckets = new (string, string, double, double)[4];
        var count = 0;
        void Add(ref Span<(string, string, double, double)> into, string scope, string? subject, string bucketKey, BucketShape? fallback)
        {
            var own = policy.RateLimit(id.TenantId, scope, subject);
            if (own is not null) into[count++] = (scope, bucketKey, own.Capacity, own.RefillPerSecond);
            else if (fallback is { Capacity: > 0 }) into[count++] = (scope, bucketKey, fallback.Capacity, fallback.RefillPerSecond);
        }

        Add(ref buckets, "tenant", null, $"{id.TenantId}|tenant", settings.Tenant);
        Add(ref buckets, "agent", id.AgentId, $"{id.TenantId}|agent|{id.AgentId}", settings.Agent);
        if (id.UserId is not null) Add(ref buckets, "user", id.UserId, $"{id.TenantId}|user|{id.UserId}", settings.User);
        Add(ref buckets, "tool", toolKey, $"{id.TenantId}|tool|{toolKey}", settings.Tool);
        if (count == 0) return null;

        var checks = new Task<BucketResult>[count];
        var scopes = new string[count];
        var keys = new string[count];
        for (var i = 0; i < count; i++)
        {
            var (scope, key, capacity, refill) = buckets[i];
            scopes[i] = scope;
            keys[i] = key;
            checks[i] = TakeAsync(grains.GetGrain<ITokenBucketGrain>(key), weight, capacity, refill);
        }

        var results = await Task.WhenAll(checks).WaitAsync(cancellationToken);
        var refused = -1;
        for (var i = 0; i < count; i++)
        {
            if (!results[i].Allowed && (refused < 0 || results[i].RetryAfterSeconds > results[refused].RetryAfterSeconds)) refused = i;
        }

        if (refused < 0) return null;
        for (var i = 0; i < count; i++)
        {
            if (results[i].Allowed) _ = grains.GetGrain<ITokenBucketGrain>(keys[i]).RefundAsync(weight);
        }

        var retryAfter = double.IsFinite(results[refused].RetryAfterSeconds) ? (int)Math.Ceiling(results[refused].RetryAfterSeconds) : 3600;
        return new Refusal(
            RefusalCodes.RateLimited,
            $"Too many calls at the {scopes[refused]} level. Wait {retryAfter} s, then retry the same call; do not retry sooner.")
        {
            Scope = scopes[refused],
            RetryAfterSeconds = Math.Max(1, retryAfter),
        };
    }

    /// <summary>
    /// One retry when Orleans rejects the message because the bucket's silo is leaving the cluster (a rolling
    /// restart): the retry reaches the bucket's new activation. At worst a token is taken twice, which errs on
    /// the strict side; a silo that is really gone fails both attempts and the call fails as before.
    /// </summary>
    private static async Task<BucketResult> TakeAsync(ITokenBucketGrain bucket, double weight, double capacity, double refill)
    {
        try
        {
            return await bucket.TakeAsync(weight, capacity, refill);
        }
        catch (OrleansMessageRejectionException)
        {
            return await bucket.TakeAsync(weight, capacity, refill);
        }
    }
}
