using Orleans.Services;

namespace ControlPlane.GuardState;

/// <summary>
/// The per-silo end of the guard state push: one on every silo, addressed by silo, so the owner knows which silos
/// took a change (and an operator can see what each silo enforces) instead of waiting on all of them together.
/// </summary>
[Alias("cp.IGuardStatePushService")]
public interface IGuardStatePushService : IGrainService
{
    /// <summary>Applies <paramref name="snapshot"/> on this silo (if newer) and says what the silo now holds.</summary>
    Task<GuardStateHeld> ApplyAsync(GuardStateSnapshot snapshot);

    /// <summary>What this silo holds and enforces right now.</summary>
    Task<GuardStateHeld> GetHeldAsync();
}
