using Orleans.Configuration;

namespace ControlPlane.Host.Cluster;

/// <summary>
/// Membership tuned for the small clusters ControlPlane runs as (three to a dozen silos). Until a crashed silo is
/// declared dead, grains that lived on it cannot be reached; Orleans' defaults (5 s probes, three missed) leave that
/// window at 6-7 s. Probing every second cuts it to about 2-3 s. What keeps it safe from false declarations on a busy
/// machine is Orleans' own: a silo is declared dead only by two votes, after indirect probes through another silo
/// also fail, with probe timeouts that stretch while the voter's own health is degraded, and never while messages
/// are still arriving from it. <c>ControlPlane:Cluster:Membership</c> (Orleans' <see cref="ClusterMembershipOptions"/>)
/// overrides any of this.
/// </summary>
internal static class DeathDetection
{
    public const string SectionName = "ControlPlane:Cluster:Membership";

    public static ISiloBuilder AddFastDeathDetection(this ISiloBuilder silo)
    {
        silo.Configure<ClusterMembershipOptions>(options =>
        {
            options.ProbeTimeout = TimeSpan.FromSeconds(1);
            options.NumMissedProbesLimit = 3;
            options.NumVotesForDeathDeclaration = 2;
            options.EnableIndirectProbes = true;
            options.ExtendProbeTimeoutDuringDegradation = true;
            options.EnableConnectionLivenessCheck = true;
        });
        silo.Services.AddOptions<ClusterMembershipOptions>().BindConfiguration(SectionName);
        return silo;
    }
}
