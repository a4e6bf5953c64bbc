using ControlPlane.Operators;

namespace ControlPlane.Host.Operations;

/// <summary>Looks operator accounts up in the cluster's directory, for sign-in and for re-checking who is acting.</summary>
internal sealed class OperatorService(IGrainFactory grains)
{
    public async Task<OperatorAccount?> FindAsync(string? operatorId)
    {
        if (!Identifiers.IsValidReference(operatorId)) return null;
        return await grains.GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton).GetAsync(operatorId!);
    }
}
