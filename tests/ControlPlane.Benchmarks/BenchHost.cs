using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.Seeding;
using Microsoft.AspNetCore.Builder;
using ModelContextProtocol.Client;

namespace ControlPlane.Benchmarks;

/// <summary>An embedded control plane started in this process on free loopback ports.</summary>
internal sealed class BenchHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private BenchHost(WebApplication app, Uri baseUrl, string dataDir, int siloPort, DemoCredentials credentials)
    {
        _app = app;
        BaseUrl = baseUrl;
        DataDir = dataDir;
        SiloPort = siloPort;
        Credentials = credentials;
    }

    public Uri BaseUrl { get; }
    public string DataDir { get; }
    public int SiloPort { get; }
    public DemoCredentials Credentials { get; }
    public IServiceProvider Services => _app.Services;

    public static async Task<BenchHost> StartAsync(string dataDir, int? primarySiloPort = null)
    {
        var httpPort = FreePort();
        var siloPort = FreePort();
        // CP_BENCH_NO_RATE_LIMITS=1 takes the buckets out, to see what they cost end to end.
        var bucket = Environment.GetEnvironmentVariable("CP_BENCH_NO_RATE_LIMITS") == "1" ? "0" : "1000000";
        var app = ControlPlaneApplication.Build(new Dictionary<string, string?>
        {
            ["urls"] = $"http://127.0.0.1:{httpPort}",
            ["ControlPlane:DataDir"] = dataDir,
            ["ControlPlane:SiloPort"] = siloPort.ToString(),
            ["ControlPlane:GatewayPort"] = FreePort().ToString(),
            ["ControlPlane:PrimarySiloPort"] = primarySiloPort?.ToString(),
            // Buckets are checked on every call, sized so that the benchmark measures their cost, not refusals.
            ["ControlPlane:RateLimits:Tenant:Capacity"] = bucket,
            ["ControlPlane:RateLimits:Tenant:RefillPerSecond"] = "1000000",
            ["ControlPlane:RateLimits:Agent:Capacity"] = bucket,
            ["ControlPlane:RateLimits:Agent:RefillPerSecond"] = "1000000",
            ["ControlPlane:RateLimits:User:Capacity"] = bucket,
            ["ControlPlane:RateLimits:User:RefillPerSecond"] = "1000000",
        });
        await app.StartAsync();

        var baseUrl = new Uri($"http://127.0.0.1:{httpPort}");
        using var http = new HttpClient { BaseAddress = baseUrl };
        while (!(await http.GetAsync("/readyz")).IsSuccessStatusCode) await Task.Delay(100);

        await using var file = File.OpenRead(Path.Combine(dataDir, DemoCredentials.FileName));
        var credentials = (await JsonSerializer.DeserializeAsync<DemoCredentials>(file, new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;
        return new BenchHost(app, baseUrl, dataDir, siloPort, credentials);
    }

    public HttpClient OperatorHttp()
    {
        var http = new HttpClient { BaseAddress = BaseUrl };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Credentials.OperatorKey);
        return http;
    }

    public Task<McpClient> ConnectAsync() =>
        McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(BaseUrl, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + Credentials.AgentToken },
        }));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
