using ControlPlane.RateLimits;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Grains.RateLimits;

public sealed class TokenBucketGrain([FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time) : Grain, ITokenBucketGrain
{
    private double _tokens = double.NaN;
    private double _capacity;
    private long _updatedAt;

    public Task<BucketResult> TakeAsync(double weight, double capacity, double refillPerSecond)
    {
        Refill(capacity, refillPerSecond);
        var cost = Math.Min(weight, capacity);
        if (_tokens >= cost)
        {
            _tokens -= cost;
            return Task.FromResult(new BucketResult(true, 0));
        }

        // Exactly when enough will have dripped back in: an assistant that waits this long succeeds.
        var wait = refillPerSecond > 0 ? (cost - _tokens) / refillPerSecond : double.PositiveInfinity;
        return Task.FromResult(new BucketResult(false, wait));
    }

    public Task RefundAsync(double weight)
    {
        if (!double.IsNaN(_tokens)) _tokens = Math.Min(_capacity, _tokens + weight);
        return Task.CompletedTask;
    }

    private void Refill(double capacity, double refillPerSecond)
    {
        var now = time.GetTimestamp();
        if (double.IsNaN(_tokens))
        {
            _tokens = capacity;
        }
        else
        {
            var elapsed = time.GetElapsedTime(_updatedAt, now).TotalSeconds;
            _tokens = Math.Min(capacity, _tokens + Math.Max(0, elapsed) * refillPerSecond);
        }

        _capacity = capacity;
        _tokens = Math.Min(_tokens, capacity);
        _updatedAt = now;
    }
}
