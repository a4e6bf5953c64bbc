using System.Net;

namespace ControlPlane.Upstreams.Egress;

/// <summary>
/// Where HTTP upstreams may be reached, bound from <c>ControlPlane:Upstreams:Egress</c>. By default only public unicast
/// addresses: an upstream URL (or a name that resolves) to loopback, link-local (cloud metadata), private, unspecified or
/// multicast addresses would let whoever registers it reach the silo's own ports and the networks behind it.
/// </summary>
public sealed class UpstreamEgressOptions
{
    public const string SectionName = UpstreamOptions.SectionName + ":Egress";

    /// <summary>127.0.0.0/8 and ::1: the silo itself (its gateway, silo and database ports).</summary>
    public bool AllowLoopback { get; set; }

    /// <summary>10/8, 172.16/12, 192.168/16, 100.64/10 (shared) and fc00::/7.</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>169.254/16 and fe80::/10, where cloud metadata endpoints answer (169.254.169.254).</summary>
    public bool AllowLinkLocal { get; set; }

    /// <summary>Networks allowed whatever their kind, in CIDR notation (e.g. <c>10.20.0.0/16</c> for one internal service network).</summary>
    public List<string> AllowedNetworks { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        for (var i = 0; i < AllowedNetworks.Count; i++)
        {
            if (!IPNetwork.TryParse(AllowedNetworks[i], out _))
            {
                yield return $"{SectionName}:AllowedNetworks:{i}: '{AllowedNetworks[i]}' is not a network in CIDR notation (e.g. 10.20.0.0/16 or fd00:1::/64).";
            }
        }
    }
}
