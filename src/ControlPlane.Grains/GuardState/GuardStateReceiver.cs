using ControlPlane.GuardState;
using Orleans.Providers;

namespace ControlPlane.Grains.GuardState;

/// <summary>
/// The per-silo end of the guard state push. Orleans' management grain reaches one instance of this on
/// every active silo (keyed <see cref="ProviderName"/>) and awaits them all.
/// </summary>
public sealed class GuardStateReceiver(IGuardStateListener listener) : IControllable
{
    public const string ProviderName = "controlplane-guard-state";
    public const int ApplySnapshotCommand = 1;

    public Task<object?> ExecuteCommand(int command, object? arg)
    {
        if (command != ApplySnapshotCommand || arg is not GuardStateSnapshot snapshot)
        {
            throw new ArgumentException($"Unknown guard state command {command}.", nameof(command));
        }

        return Task.FromResult<object?>(listener.Apply(snapshot));
    }
}
