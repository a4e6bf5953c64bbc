using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>The real rate-limit step, made to fail the way an unreachable bucket grain does while <see cref="Unreachable"/> is set.</summary>
internal sealed class UnreachableRateLimits(RateLimitStep inner) : IGuardStep
{
    public volatile bool Unreachable;

    public string Name => inner.Name;

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken) =>
        Unreachable
            ? throw new Orleans.Runtime.SiloUnavailableException("bucket grain's silo is gone (test)")
            : inner.CheckAsync(call, cancellationToken);
}
