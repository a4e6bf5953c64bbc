using ControlPlane.Guard.Limits;
using ControlPlane.Guard.State;
using ControlPlane.RateLimits;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// Token buckets per tenant, agent, user and tool. All of a tenant's buckets live in one grain, so no
/// budget is overspent across silos; each silo spends tokens leased from it (<see cref="RateLimitLeases"/>), so most
/// calls cost no round trip. A call takes from every bucket or from none, and a refusal says how long to wait for
/// the bucket that refused.
/// </summary>
public sealed class RateLimitStep(RateLimitLeases leases, IOptions<RateLimitOptions> options) : IGuardStep
{
    private static readonly string[] LevelNames = ["tenant", "agent", "user", "tool"];

    public string Name => "rate-limit";

    public async ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var policy = call.State.Policy;
        var id = call.Identity;
        var toolKey = call.Target.Key;
        var weight = settings.ToolWeights.Count > 0 && settings.ToolWeights.TryGetValue(toolKey, out var w) ? w : 1;

        var tenant = Demand(policy, id.TenantId, BucketLevel.Tenant, null, settings.Tenant);
        var agent = Demand(policy, id.TenantId, BucketLevel.Agent, id.AgentId, settings.Agent);
        var user = id.UserId is null ? null : Demand(policy, id.TenantId, BucketLevel.User, id.UserId, settings.User);
        var tool = Demand(policy, id.TenantId, BucketLevel.Tool, toolKey, settings.Tool);
        var count = (tenant.HasValue ? 1 : 0) + (agent.HasValue ? 1 : 0) + (user.HasValue ? 1 : 0) + (tool.HasValue ? 1 : 0);
        if (count == 0) return null;

        var demands = new BucketDemand[count];
        count = 0;
        if (tenant is { } t) demands[count++] = t;
        if (agent is { } a) demands[count++] = a;
        if (user is { } u) demands[count++] = u;
        if (tool is { } o) demands[count] = o;

        var decision = await leases.TakeAsync(id.TenantId, demands, weight, cancellationToken);
        if (decision.Allowed) return null;

        var level = LevelNames[(int)demands[decision.RefusedDemand].Level];
        var retryAfter = double.IsFinite(decision.RetryAfterSeconds) ? (int)Math.Ceiling(decision.RetryAfterSeconds) : 3600;
        return new Refusal(
            RefusalCodes.RateLimited,
            $"Too many calls at the {level} level. Wait {retryAfter} s, then retry the same call; do not retry sooner.")
        {
            Scope = level,
            RetryAfterSeconds = Math.Max(1, retryAfter),
        };
    }

    /// <summary>The tenant's own limit for this level (and subject) when it set one, else the deployment's default.</summary>
    private static BucketDemand? Demand(GuardPolicy policy, string tenantId, BucketLevel level, string? subject, BucketShape? fallback)
    {
        var own = policy.RateLimit(tenantId, LevelNames[(int)level], subject);
        if (own is not null) return new BucketDemand(level, subject, own.Capacity, own.RefillPerSecond);
        return fallback is { Capacity: > 0 } ? new BucketDemand(level, subject, fallback.Capacity, fallback.RefillPerSecond) : null;
    }
}
