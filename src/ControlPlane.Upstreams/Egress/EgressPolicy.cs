using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Upstreams.Egress;

/// <summary>
/// Decides whether an HTTP upstream may be reached at an address. Applied to literal addresses at registration and to
/// every resolved address at each connect (<see cref="EgressConnector"/>), so a name that later resolves elsewhere (DNS
/// rebinding) is judged by where it points at that moment.
/// </summary>
public sealed class EgressPolicy
{
    private static readonly IPNetwork[] Loopback = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];
    private static readonly IPNetwork[] LinkLocal = [IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("fe80::/10")];
    private static readonly IPNetwork[] Private =
    [
        IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("fc00::/7"),
    ];

    /// <summary>Never a destination: "this network", multicast, broadcast and reserved ranges, unless listed in AllowedNetworks.</summary>
    private static readonly IPNetwork[] NotADestination =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
        IPNetwork.Parse("::/128"), IPNetwork.Parse("ff00::/8"),
    ];

    /// <summary>NAT64 (RFC 6052): the last 32 bits are an IPv4 address, judged as that address.</summary>
    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");

    private readonly UpstreamEgressOptions _options;
    private readonly IPNetwork[] _allowed;

    public EgressPolicy(UpstreamEgressOptions options)
    {
        _options = options;
        _allowed = [.. options.AllowedNetworks.Select(n => IPNetwork.Parse(n))];
    }

    /// <summary>Why the address may not be reached, naming the key that would allow it; null when it may.</summary>
    public string? Refuse(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && Nat64.Contains(address)) address = new IPAddress(address.GetAddressBytes()[12..]);
        if (_allowed.Any(n => n.Contains(address))) return null;

        if (In(NotADestination, address)) return $"{address} is an unspecified, multicast or reserved address; only {UpstreamEgressOptions.SectionName}:AllowedNetworks can allow it";
        if (In(Loopback, address) && !_options.AllowLoopback) return $"{address} is a loopback address (the silo itself); set {UpstreamEgressOptions.SectionName}:AllowLoopback to allow it";
        if (In(LinkLocal, address) && !_options.AllowLinkLocal) return $"{address} is a link-local address (cloud metadata lives there); set {UpstreamEgressOptions.SectionName}:AllowLinkLocal to allow it";
        if (In(Private, address) && !_options.AllowPrivateNetworks) return $"{address} is a private-network address; set {UpstreamEgressOptions.SectionName}:AllowPrivateNetworks or list its network in {UpstreamEgressOptions.SectionName}:AllowedNetworks";
        return null;
    }

    /// <summary>For a URL whose host is a literal address: why it may not be reached; null for a name (judged at connect) or an allowed address.</summary>
    public string? RefuseLiteral(Uri url) =>
        url.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 && IPAddress.TryParse(url.Host.Trim('[', ']'), out var address) ? Refuse(address) : null;

    private static bool In(IPNetwork[] networks, IPAddress address) => networks.Any(n => n.Contains(address));
}
