using ControlPlane.GuardState;
using Orleans.Runtime;
using Orleans.Runtime.Services;

namespace ControlPlane.Grains.GuardState;

/// <summary>Reaches the <see cref="IGuardStatePushService"/> of one named silo.</summary>
public sealed class GuardStatePushClient(IServiceProvider services) : GrainServiceClient<IGuardStatePushService>(services)
{
    public IGuardStatePushService On(SiloAddress silo) => GetGrainService(silo);
}
