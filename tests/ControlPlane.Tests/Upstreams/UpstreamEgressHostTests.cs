using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Upstreams;

/// <summary>A host with the deployment's default egress policy: no loopback, link-local or private destinations.</summary>
public sealed class UpstreamEgressHostTests
{
    private static readonly Dictionary<string, string?> DefaultEgress = new() { ["ControlPlane:Upstreams:Egress:AllowLoopback"] = "false" };

    [Fact]
    public async Task A_literal_disallowed_address_is_refused_at_registration_with_the_key_to_set()
    {
        await using var host = await ControlPlaneTestHost.StartAsync(settings: DefaultEgress);
        using var http = host.OperatorHttp();
        foreach (var (url, key) in new[]
                 {
                     ("http://127.0.0.1:9/mcp", "AllowLoopback"), ("http://[::1]:9/mcp", "AllowLoopback"),
                     ("http://169.254.169.254/latest/meta-data", "AllowLinkLocal"), ("http://[fe80::1]/mcp", "AllowLinkLocal"),
                     ("http://10.0.0.7/mcp", "AllowPrivateNetworks"), ("http://192.168.1.20:8080/mcp", "AllowPrivateNetworks"),
                     ("http://0.0.0.0:9/mcp", "AllowedNetworks"),
                 })
        {
            var response = await http.PostAsJsonAsync("/api/v1/servers", new { id = "egress-literal", tenantId = "demo", transport = "http", url });
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{url}: {(int)response.StatusCode}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var message = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("url")[0].GetString();
            Assert.Contains("ControlPlane:Upstreams:Egress:" + key, message, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("egress-literal", await http.GetStringAsync("/api/v1/servers"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_resolving_to_loopback_is_refused_at_connect_as_unavailable_and_nothing_is_sent()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var host = await ControlPlaneTestHost.StartAsync(settings: DefaultEgress);

        // 'localhost' is a name: registration cannot judge it; each connect judges what it resolves to.
        var registered = await host.RegisterUpstreamAsync(new { id = "egress-local", transport = "http", url = $"http://localhost:{port}/mcp", headers = new Dictionary<string, string> { ["Authorization"] = "Bearer egress-secret" } });
        Assert.Equal("egress-local", registered.GetProperty("id").GetString());

        await Eventually.TrueAsync(() => host.Upstream("egress-local")?.Problem?.Contains("egress policy", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(60), "the connect to be refused by the egress policy");
        var view = host.Upstream("egress-local")!;
        Assert.NotEqual("running", view.Status);
        Assert.Contains("ControlPlane:Upstreams:Egress:AllowLoopback", view.Problem, StringComparison.Ordinal);
        using (var http = host.OperatorHttp())
        {
            Assert.Contains("AllowLoopback", await http.GetStringAsync("/api/v1/servers"), StringComparison.Ordinal);
        }

        var (token, _) = await host.MintAsync("demo", "egress-agent", scopes: ["server:egress-local:read"]);
        await using var client = await host.ConnectAsync(token);
        var refusal = RefusalAssert.Refused(await client.CallToolAsync("egress-local__anything"), RefusalCodes.UpstreamUnavailable);
        Assert.Contains("egress policy refuses 'localhost'", refusal.GetProperty("message").GetString(), StringComparison.Ordinal);

        Assert.False(listener.Pending(), "the upstream's address was dialled");
        await host.RemoveUpstreamAsync("egress-local");
    }
}
