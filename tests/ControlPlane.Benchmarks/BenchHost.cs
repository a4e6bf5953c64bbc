using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using ControlPlane.Audit.Storage;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.Seeding;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
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

    public static Task<BenchHost> StartAsync(string dataDir, int? primarySiloPort = null) => StartAsync(dataDir, new BenchHostOptions { PrimarySiloPort = primarySiloPort });

    public static async Task<BenchHost> StartAsync(string dataDir, BenchHostOptions options)
    {
        var primarySiloPort = options.PrimarySiloPort;
        var httpPort = FreePort();
        var siloPort = FreePort();
        // CP_BENCH_NO_RATE_LIMITS=1 takes the buckets out, to see what they cost end to end.
        var bucket = Environment.GetEnvironmentVariable("CP_BENCH_NO_RATE_LIMITS") == "1" ? "0" : "1000000";
        var settings = new Dictionary<string, string?>
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
        };
        foreach (var (key, value) in options.Settings) settings[key] = value;
        var app = ControlPlaneApplication.Build(settings, services =>
        {
            options.Steps?.Register(services);
            if (options.DiscardAudit)
            {
                services.AddSingleton<IAuditStore>(new DiscardingAuditStore(new SqliteAuditStore(Path.Combine(dataDir, "audit.db"))));
            }
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

    public Task<McpClient> ConnectAsync(string? agentToken = null) =>
        McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(BaseUrl, "/mcp"),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + (agentToken ?? Credentials.AgentToken) },
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

/// <summary>How a bench host differs from the embedded default.</summary>
internal sealed class BenchHostOptions
{
    /// <summary>The first silo's port, to join its cluster; null starts a new one.</summary>
    public int? PrimarySiloPort { get; init; }

    /// <summary>Benchmark-only switches to skip guard steps one at a time; null runs the production pipeline as is.</summary>
    public StepSwitches? Steps { get; init; }

    /// <summary>Accept audit records without writing them, to show what durable audit costs.</summary>
    public bool DiscardAudit { get; init; }

    /// <summary>Extra configuration, e.g. the PostgreSQL audit store.</summary>
    public IDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();
}
