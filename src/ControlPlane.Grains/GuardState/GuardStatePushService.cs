using ControlPlane.GuardState;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ControlPlane.Grains.GuardState;

/// <summary>
/// Runs on every silo and hands pushed guard state to the silo's cache. A grain service rather than a control command
/// to all silos at once: the owner can push to each silo with its own deadline, so one dead or suspected silo delays
/// no flip, and it learns which silos took the change.
/// </summary>
public sealed class GuardStatePushService(GrainId id, Silo silo, ILoggerFactory loggerFactory, IGuardStateListener listener)
    : GrainService(id, silo, loggerFactory), IGuardStatePushService
{
    public Task<GuardStateHeld> ApplyAsync(GuardStateSnapshot snapshot)
    {
        listener.Apply(snapshot);
        return Task.FromResult(listener.Describe());
    }

    public Task<GuardStateHeld> GetHeldAsync() => Task.FromResult(listener.Describe());
}
