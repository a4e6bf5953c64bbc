using ControlPlane.Grains.GuardState;
using ControlPlane.GuardState;
using ControlPlane.Operators;
using ControlPlane.RateLimits;
using Orleans.Runtime;

namespace ControlPlane.Host.Operations;

/// <summary>One silo as the cluster sees it, and the guard state it enforces (null when it did not answer in time).</summary>
internal sealed record SiloView(string Address, string Status, bool ThisSilo, GuardStateHeld? GuardState, string? Error);

/// <summary>Where a grain the guard relies on is active (null: not active anywhere right now, or not known: see the error).</summary>
internal sealed record GrainPlacementView(string Grain, string? Silo, string? Error);

internal sealed record ClusterView(string ThisSilo, GuardStateVersion Owner, IReadOnlyList<SiloView> Silos, IReadOnlyList<GrainPlacementView> Grains);

/// <summary>
/// What an on-call engineer asks first in an incident: which silos are in the cluster, does each enforce the owner's
/// guard state (so a switch just set is in force everywhere), and which silo's loss would move which grain.
/// </summary>
internal sealed class ClusterService(
    IClusterMembershipService membership,
    ILocalSiloDetails local,
    GuardStatePushClient silos,
    IGrainFactory grains)
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(1);

    public async Task<ClusterView> DescribeAsync(OperatorAccount by, string? tenantId, CancellationToken cancellationToken)
    {
        by.RequireRole(OperatorRoles.Viewer);
        by.RequireAllTenants("The cluster's state");
        if (tenantId is not null) by.RequireTenant(tenantId);

        var owner = grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        var ownerVersion = SiloFailover.RideOutAsync(owner.GetVersionStampAsync, cancellationToken);
        var members = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status is not SiloStatus.Dead)
            .OrderBy(m => m.SiloAddress.ToString(), StringComparer.Ordinal)
            .ToArray();
        var views = await Task.WhenAll(members.Select(m => AskAsync(m, cancellationToken)));

        var management = grains.GetGrain<IManagementGrain>(0);
        List<(string Name, IAddressable Grain)> watched =
        [
            ("guard-state", owner),
            ("operator-directory", grains.GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton)),
            ("tenant-directory", grains.GetGrain<ControlPlane.Tenants.ITenantDirectoryGrain>(ControlPlane.Tenants.ITenantDirectoryGrain.Singleton)),
        ];
        if (tenantId is not null) watched.Add(($"rate-limits/{tenantId}", grains.GetGrain<ITenantRateLimitGrain>(tenantId)));

        var placements = await Task.WhenAll(watched.Select(w => LocateAsync(management, w.Name, w.Grain, cancellationToken)));
        return new ClusterView(local.SiloAddress.ToString(), await ownerVersion, views, placements);
    }

    /// <summary>Where a grain is active; the directory entry may itself sit on a silo that just died, so this only tries.</summary>
    private static async Task<GrainPlacementView> LocateAsync(IManagementGrain management, string name, IAddressable grain, CancellationToken cancellationToken)
    {
        try
        {
            var silo = await management.GetActivationAddress(grain).AsTask().WaitAsync(AskTimeout, cancellationToken);
            return new GrainPlacementView(name, silo?.ToString(), null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new GrainPlacementView(name, null, ex is TimeoutException ? "did not answer within 1 s" : ex.GetType().Name);
        }
    }

    private async Task<SiloView> AskAsync(ClusterMember member, CancellationToken cancellationToken)
    {
        var address = member.SiloAddress;
        var thisSilo = address.Equals(local.SiloAddress);
        try
        {
            var held = await silos.On(address).GetHeldAsync().WaitAsync(AskTimeout, cancellationToken);
            return new SiloView(address.ToString(), member.Status.ToString(), thisSilo, held, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new SiloView(address.ToString(), member.Status.ToString(), thisSilo, null, ex is TimeoutException ? "did not answer within 1 s" : ex.GetType().Name);
        }
    }
}
