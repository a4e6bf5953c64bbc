using ControlPlane.Guard.Limits;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// Runs the invocation under its server's downstream protection (<see cref="DownstreamProtection"/>): an unhealthy,
/// slow or saturated server becomes UPSTREAM_UNAVAILABLE with a retry_after, for every kind of request it serves.
/// </summary>
public sealed class DownstreamStage(DownstreamProtection downstream) : IGuardStage
{
    public string Name => "downstream";

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        try
        {
            return await downstream.ExecuteAsync(call.Target.ServerId, call.Target.RegistrationTenantId, (call, next), static (state, ct) => state.next.RunAsync(state.call, ct), cancellationToken);
        }
        catch (DownstreamUnavailableException ex)
        {
            var retryAfter = (int)Math.Max(1, Math.Ceiling(ex.RetryAfter.TotalSeconds));
            return GuardOutcome.Failed(
                new Refusal(RefusalCodes.UpstreamUnavailable, $"{ex.Message} Retry after {retryAfter} s; do not hammer it.") { RetryAfterSeconds = retryAfter },
                "upstream_unavailable");
        }
    }
}
