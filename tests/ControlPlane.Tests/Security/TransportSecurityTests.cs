using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.Seeding;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Security;

/// <summary>
/// TLS for both kinds of traffic: mutual TLS between silos (<c>ControlPlane:Cluster:Tls:*</c>) and HTTPS for agents
/// and operators through Kestrel's standard configuration. Certificates are made here, per test.
/// </summary>
public sealed class TransportSecurityTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = TestCertificates.Password;
    private static readonly Dictionary<string, object?> Ada = new() { ["email"] = "ada@example.com" };
    private readonly string _certificates = Directory.CreateTempSubdirectory("cp-tls-").FullName;

    public void Dispose() => Directory.Delete(_certificates, recursive: true);

    [Fact]
    public async Task Silos_sharing_the_cluster_certificate_form_one_cluster_and_a_silo_with_another_certificate_cannot_join()
    {
        var cluster = TlsSettings(CreateCertificate("cluster", "CN=controlplane-silo"));
        await using var first = await ControlPlaneTestHost.StartAsync(settings: cluster);
        await using var second = await ControlPlaneTestHost.StartAsync(dataDir: first.DataDir, primarySiloPort: first.SiloPort, settings: cluster);
        Assert.Equal(2, await ActiveSilosAsync(first));

        // Messages cross the encrypted link: a switch set through one silo refuses the next call on the other.
        await using var onSecond = await second.ConnectAsync();
        RefusalAssert.Succeeded(await onSecond.CallToolAsync("lookup_customer_by_email", Ada));
        var switchId = await first.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "tls cluster" });
        RefusalAssert.Refused(await onSecond.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
        await second.ClearAsync(switchId);
        RefusalAssert.Succeeded(await onSecond.CallToolAsync("lookup_customer_by_email", Ada));

        // Same subject, another key: the pin is on the certificate, not its name. Then a silo with no TLS at all.
        var impostor = TlsSettings(CreateCertificate("impostor", "CN=controlplane-silo"));
        foreach (var (name, settings) in new[] { ("another certificate", impostor), ("no TLS", new Dictionary<string, string?>()) })
        {
            var joined = await TryJoinAsync(first, settings);
            output.WriteLine($"silo with {name}: {joined}");
            Assert.StartsWith("refused", joined, StringComparison.Ordinal);
            Assert.Equal(2, await ActiveSilosAsync(first));
        }

        // The cluster itself is unharmed.
        var again = await first.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "tls cluster after intruders" });
        RefusalAssert.Refused(await onSecond.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);
        await first.ClearAsync(again);
    }

    [Theory]
    [InlineData("ControlPlane:Cluster:Tls:CertificatePath", "/nonexistent/silo.pfx", "ControlPlane:Cluster:Tls:CertificatePath could not be loaded")]
    [InlineData("ControlPlane:Cluster:Tls:Password", "wrong password", "ControlPlane:Cluster:Tls:CertificatePath could not be loaded")]
    [InlineData("ControlPlane:Cluster:Tls:AllowedThumbprints:0", "abc", "ControlPlane:Cluster:Tls:AllowedThumbprints has 'abc'")]
    [InlineData("ControlPlane:Cluster:Tls:Thumbprint", "00", "ControlPlane:Cluster:Tls:CertificatePath and ControlPlane:Cluster:Tls:Thumbprint are alternatives")]
    [InlineData("ControlPlane:Cluster:Tls:CertificatePath", "", "ControlPlane:Cluster:Tls:CertificatePath (or ControlPlane:Cluster:Tls:Thumbprint) is required")]
    public void A_bad_cluster_tls_setting_stops_the_host_naming_the_key(string key, string value, string expected)
    {
        var settings = TlsSettings(CreateCertificate("valid", "CN=controlplane-silo"));
        settings[key] = value;
        if (value.Length == 0) settings["ControlPlane:Cluster:Tls:KeyPath"] = Path.Combine(_certificates, "silo.key");
        settings["ControlPlane:DataDir"] = Path.Combine(_certificates, "data");

        var error = Assert.Throws<OptionsValidationException>(() => ControlPlaneApplication.Build(settings));
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain(Password, error.Message);
    }

    [Fact]
    public void A_certificate_without_client_authentication_is_refused_for_the_cluster()
    {
        var path = CreateCertificate("server-only", "CN=controlplane-silo", clientAuth: false);
        var settings = TlsSettings(path);
        settings["ControlPlane:DataDir"] = Path.Combine(_certificates, "data");

        var error = Assert.Throws<OptionsValidationException>(() => ControlPlaneApplication.Build(settings));
        Assert.Contains("ControlPlane:Cluster:Tls: the certificate must allow both server and client authentication", error.Message);
    }

    [Fact]
    public async Task Agents_and_operators_work_over_https_with_the_certificate_from_kestrel_configuration()
    {
        var certificatePath = CreateCertificate("https", "CN=127.0.0.1", ipAddress: IPAddress.Loopback);
        using var certificate = X509CertificateLoader.LoadPkcs12FromFile(certificatePath, Password);
        var port = FreePorts.Next();
        var dataDir = Path.Combine(_certificates, "https-data");
        await using var app = ControlPlaneApplication.Build(new Dictionary<string, string?>
        {
            ["ControlPlane:DataDir"] = dataDir,
            ["ControlPlane:SiloPort"] = FreePorts.Next().ToString(),
            ["ControlPlane:GatewayPort"] = FreePorts.Next().ToString(),
            ["Kestrel:Endpoints:Https:Url"] = $"https://127.0.0.1:{port}",
            ["Kestrel:Endpoints:Https:Certificate:Path"] = certificatePath,
            ["Kestrel:Endpoints:Https:Certificate:Password"] = Password,
        });
        await app.StartAsync();
        try
        {
            // Trust exactly this certificate, as a client with the deployment's CA would.
            using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == certificate.Thumbprint };
            using var http = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await WaitUntilReadyAsync(http);
            var credentials = JsonSerializer.Deserialize<DemoCredentials>(await File.ReadAllTextAsync(Path.Combine(dataDir, DemoCredentials.FileName)), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

            // The operator API over https.
            using var list = new HttpRequestMessage(HttpMethod.Get, "/api/v1/kill-switches") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", credentials.OperatorKey) } };
            var listed = await http.SendAsync(list);
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);

            // An MCP client over https: list, call, and a refusal from a switch set over https.
            await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(http.BaseAddress!, "/mcp"),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + credentials.AgentToken },
            }, http));
            Assert.Contains(await client.ListToolsAsync(), t => t.Name == "lookup_customer_by_email");
            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Ada));

            using var kill = new HttpRequestMessage(HttpMethod.Post, "/api/v1/kill-switches")
            {
                Headers = { Authorization = new AuthenticationHeaderValue("Bearer", credentials.OperatorKey) },
                Content = JsonContent.Create(new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "over https" }),
            };
            Assert.Equal(HttpStatusCode.Created, (await http.SendAsync(kill)).StatusCode);
            RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Ada), RefusalCodes.Killed);

            // Plain http on the https port is never answered by the app.
            using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var plainAnswer = await Record.ExceptionAsync(() => plain.GetAsync($"http://127.0.0.1:{port}/readyz"));
            Assert.NotNull(plainAnswer);
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await app.StopAsync(stop.Token);
        }
    }

    /// <summary>Starts a silo that tries to join <paramref name="primary"/>; says whether it became ready and joined.</summary>
    private async Task<string> TryJoinAsync(ControlPlaneTestHost primary, Dictionary<string, string?> tls)
    {
        var port = FreePorts.Next();
        var settings = new Dictionary<string, string?>(tls)
        {
            ["urls"] = $"http://127.0.0.1:{port}",
            ["ControlPlane:DataDir"] = primary.DataDir,
            ["ControlPlane:SiloPort"] = FreePorts.Next().ToString(),
            ["ControlPlane:GatewayPort"] = FreePorts.Next().ToString(),
            ["ControlPlane:PrimarySiloPort"] = primary.SiloPort.ToString(),
        };

        await using var app = ControlPlaneApplication.Build(settings);
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var started = false;
        try
        {
            try
            {
                await app.StartAsync(budget.Token);
                started = true;
            }
            catch (Exception ex)
            {
                return $"refused: start failed ({ex.GetType().Name})";
            }

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            var until = DateTime.UtcNow.AddSeconds(20);
            while (DateTime.UtcNow < until)
            {
                try
                {
                    if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) return "joined: it became ready";
                }
                catch (HttpRequestException)
                {
                }
                catch (TaskCanceledException)
                {
                }

                await Task.Delay(250);
            }

            return "refused: never ready";
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await app.StopAsync(stop.Token);
            }
            catch (Exception)
            {
                // A silo that never joined may not stop cleanly; it is disposed regardless.
            }

            if (!started) await StopGrainDirectoryAsync(app.Services);
        }
    }

    /// <summary>
    /// Orleans will not stop a silo whose start failed ("not in the Running state"), and stopping its lifecycle by hand
    /// waits forever on stages that never came up. Disposed as it is, its grain directory's membership loop spins on a
    /// completed update stream and takes a core for the rest of the run, so that one loop is stopped here. The
    /// directory is internal to Orleans, hence reflection; if Orleans renames it, only the spinning returns.
    /// </summary>
    private static async Task StopGrainDirectoryAsync(IServiceProvider services)
    {
        var contract = typeof(Orleans.Runtime.SiloAddress).Assembly.GetType("Orleans.Runtime.GrainDirectory.ILocalGrainDirectory")
            ?? typeof(Orleans.Runtime.ISiloLifecycle).Assembly.GetType("Orleans.Runtime.GrainDirectory.ILocalGrainDirectory");
        if (contract?.GetMethod("StopAsync", Type.EmptyTypes) is not { } stop || services.GetService(contract) is not { } directory) return;
        if (stop.Invoke(directory, null) is Task stopping) await stopping.WaitAsync(TimeSpan.FromSeconds(10));
    }

    private static async Task<int> ActiveSilosAsync(ControlPlaneTestHost host)
    {
        var management = host.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        return (await management.GetHosts(onlyActive: true)).Count;
    }

    private static async Task WaitUntilReadyAsync(HttpClient http)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < until)
            {
            }

            if (DateTime.UtcNow > until) throw new TimeoutException("The https host did not become ready within 60 s.");
            await Task.Delay(100);
        }
    }

    private static Dictionary<string, string?> TlsSettings(string certificatePath) => new()
    {
        ["ControlPlane:Cluster:Tls:CertificatePath"] = certificatePath,
        ["ControlPlane:Cluster:Tls:Password"] = Password,
    };

    private string CreateCertificate(string name, string subject, bool clientAuth = true, IPAddress? ipAddress = null) =>
        TestCertificates.CreatePfx(_certificates, name, subject, clientAuth, ipAddress);
}
