using System.Net;
using System.Net.Sockets;
using System.Text;
using ControlPlane.Upstreams.Egress;

namespace ControlPlane.Tests.Upstreams.Egress;

/// <summary>The egress policy on addresses, and the connector that applies it to every address a name resolves to.</summary>
public sealed class EgressPolicyTests
{
    [Theory]
    [InlineData("127.0.0.1", "AllowLoopback")]
    [InlineData("127.8.9.10", "AllowLoopback")]
    [InlineData("::1", "AllowLoopback")]
    [InlineData("::ffff:127.0.0.1", "AllowLoopback")]
    [InlineData("64:ff9b::7f00:1", "AllowLoopback")]
    [InlineData("169.254.169.254", "AllowLinkLocal")]
    [InlineData("fe80::1", "AllowLinkLocal")]
    [InlineData("10.1.2.3", "AllowPrivateNetworks")]
    [InlineData("172.16.0.1", "AllowPrivateNetworks")]
    [InlineData("172.31.255.254", "AllowPrivateNetworks")]
    [InlineData("192.168.1.1", "AllowPrivateNetworks")]
    [InlineData("100.64.0.1", "AllowPrivateNetworks")]
    [InlineData("fd00:ec2::254", "AllowPrivateNetworks")]
    [InlineData("0.0.0.0", "AllowedNetworks")]
    [InlineData("::", "AllowedNetworks")]
    [InlineData("224.0.0.1", "AllowedNetworks")]
    [InlineData("ff02::1", "AllowedNetworks")]
    [InlineData("255.255.255.255", "AllowedNetworks")]
    public void The_default_policy_refuses_non_public_addresses_naming_the_key_that_would_allow_them(string address, string key)
    {
        var why = new EgressPolicy(new UpstreamEgressOptions()).Refuse(IPAddress.Parse(address));
        Assert.NotNull(why);
        Assert.Contains("ControlPlane:Upstreams:Egress:" + key, why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("172.32.0.1")]
    [InlineData("2606:4700::1111")]
    public void Public_unicast_addresses_pass(string address) =>
        Assert.Null(new EgressPolicy(new UpstreamEgressOptions()).Refuse(IPAddress.Parse(address)));

    [Fact]
    public void Each_switch_allows_its_own_kind_only_and_listed_networks_allow_anything_in_them()
    {
        var loopback = new EgressPolicy(new UpstreamEgressOptions { AllowLoopback = true });
        Assert.Null(loopback.Refuse(IPAddress.Loopback));
        Assert.Null(loopback.Refuse(IPAddress.IPv6Loopback));
        Assert.NotNull(loopback.Refuse(IPAddress.Parse("169.254.169.254")));
        Assert.NotNull(loopback.Refuse(IPAddress.Parse("10.0.0.1")));

        var listed = new EgressPolicy(new UpstreamEgressOptions { AllowedNetworks = ["10.20.0.0/16"] });
        Assert.Null(listed.Refuse(IPAddress.Parse("10.20.3.4")));
        Assert.NotNull(listed.Refuse(IPAddress.Parse("10.21.3.4")));

        Assert.Null(new EgressPolicy(new UpstreamEgressOptions { AllowPrivateNetworks = true }).Refuse(IPAddress.Parse("192.168.0.10")));
        Assert.Null(new EgressPolicy(new UpstreamEgressOptions { AllowLinkLocal = true }).Refuse(IPAddress.Parse("169.254.169.254")));
        Assert.Equal(["ControlPlane:Upstreams:Egress:AllowedNetworks:0: 'ten/8' is not a network in CIDR notation (e.g. 10.20.0.0/16 or fd00:1::/64)."],
            new UpstreamEgressOptions { AllowedNetworks = ["ten/8"] }.Validate());
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/mcp")]
    [InlineData("http://2130706433/mcp")]
    [InlineData("http://[::1]/mcp")]
    [InlineData("http://[::ffff:169.254.169.254]/latest")]
    [InlineData("https://10.0.0.5/mcp")]
    public void Literal_addresses_in_urls_are_judged_however_they_are_written(string url) =>
        Assert.NotNull(new EgressPolicy(new UpstreamEgressOptions()).RefuseLiteral(new Uri(url)));

    [Fact]
    public void A_name_is_left_to_the_connect() =>
        Assert.Null(new EgressPolicy(new UpstreamEgressOptions()).RefuseLiteral(new Uri("http://localhost:8080/mcp")));

    [Fact]
    public async Task A_name_that_resolves_to_loopback_is_refused_at_connect_and_nothing_is_sent()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        // The name looked harmless at registration; now it points at the silo itself (DNS rebinding).
        var connector = new EgressConnector(new EgressPolicy(new UpstreamEgressOptions()), (_, _) => Task.FromResult(new[] { IPAddress.Loopback }));
        using var http = new HttpClient(connector.CreateHandler());
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"http://rebound.example:{port}/mcp"));
        Assert.Contains("egress policy refuses 'rebound.example'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("ControlPlane:Upstreams:Egress:AllowLoopback", refused.Message, StringComparison.Ordinal);

        await Task.Delay(200);
        Assert.False(listener.Pending(), "a connection reached the listener");
    }

    [Fact]
    public async Task Only_allowed_addresses_of_a_name_are_dialled_and_redirects_are_not_followed()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var served = ServeOneRedirectAsync(listener, $"http://metadata.example:{port}/latest/meta-data");

        // Metadata first, loopback second: the metadata address is never dialled, the allowed one is.
        var connector = new EgressConnector(new EgressPolicy(new UpstreamEgressOptions { AllowLoopback = true }),
            (_, _) => Task.FromResult(new[] { IPAddress.Parse("169.254.169.254"), IPAddress.Loopback }));
        using var http = new HttpClient(connector.CreateHandler()) { Timeout = TimeSpan.FromSeconds(10) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "upstream-credential");
        using var response = await http.GetAsync($"http://mixed.example:{port}/mcp");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        var request = await served;
        Assert.StartsWith("GET /mcp ", request, StringComparison.Ordinal);
        Assert.False(listener.Pending(), "the redirect was followed");
    }

    /// <summary>Answers one request with a 302 to another host and returns what it received.</summary>
    private static async Task<string> ServeOneRedirectAsync(TcpListener listener, string location)
    {
        using var client = await listener.AcceptTcpClientAsync();
        var stream = client.GetStream();
        var buffer = new byte[4096];
        var received = new StringBuilder();
        while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer);
            if (read == 0) break;
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
        return received.ToString();
    }
}
