using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard;
using ControlPlane.Host.Hosting;
using ControlPlane.Host.Seeding;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>
/// The real control plane host (Kestrel on 127.0.0.1, a co-hosted silo, SQLite under a temp data
/// directory), started in-process exactly as Program.cs does it.
/// </summary>
public sealed class ControlPlaneTestHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly bool _ownsDataDir;

    private ControlPlaneTestHost(WebApplication app, Uri baseUrl, string dataDir, int siloPort, bool ownsDataDir, LabTools lab)
    {
        _app = app;
        BaseUrl = baseUrl;
        DataDir = dataDir;
        SiloPort = siloPort;
        _ownsDataDir = ownsDataDir;
        Lab = lab;
    }

    public Uri BaseUrl { get; }

    public string DataDir { get; }

    public int SiloPort { get; }

    public LabTools Lab { get; }

    public IServiceProvider Services => _app.Services;

    public DemoCredentials Credentials { get; private set; } = null!;

    public static async Task<ControlPlaneTestHost> StartAsync(
        string? dataDir = null, int? primarySiloPort = null, IDictionary<string, string?>? settings = null, Action<IServiceCollection>? configureServices = null,
        Action<IServiceCollection>? decorateServices = null)
    {
        var ownsDataDir = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "cp-test-" + Guid.NewGuid().ToString("N")[..12]);
        var httpPort = FreePorts.Next();
        var siloPort = FreePorts.Next();

        var values = new Dictionary<string, string?>
        {
            ["urls"] = $"http://127.0.0.1:{httpPort}",
            ["ControlPlane:DataDir"] = dataDir,
            ["ControlPlane:SiloPort"] = siloPort.ToString(),
            ["ControlPlane:GatewayPort"] = FreePorts.Next().ToString(),
            ["ControlPlane:PrimarySiloPort"] = primarySiloPort?.ToString(),
            ["ControlPlane:GuardState:PollInterval"] = "00:00:00.500",
            ["ControlPlane:GuardState:StaleAfter"] = "00:00:03",
            // Scheduled drills (first run 10 min after start) would set switches and write audit records in the middle
            // of a long-lived fixture's tests; the drill tests turn the schedule on where they test it.
            ["ControlPlane:Drills:Interval"] = "00:00:00",
            // The upstream tests run their servers with node and serve HTTP upstreams on 127.0.0.1; the deployment
            // defaults (no stdio command, no loopback) are tested with hosts that set these back (UpstreamEgressHostTests, StdioAllowlistTests).
            ["ControlPlane:Upstreams:Stdio:AllowedCommands:0"] = "node",
            ["ControlPlane:Upstreams:Egress:AllowLoopback"] = "true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) values[key] = value;

        var lab = new LabTools();
        var app = ControlPlaneApplication.Build(values, services =>
        {
            services.AddSingleton<IToolSource>(lab);
            configureServices?.Invoke(services);
        }, decorateServices: decorateServices);
        await app.StartAsync();

        var host = new ControlPlaneTestHost(app, new Uri($"http://127.0.0.1:{httpPort}"), dataDir, siloPort, ownsDataDir, lab);
        await host.WaitUntilReadyAsync();
        host.Credentials = await host.ReadCredentialsAsync();
        return host;
    }

    public HttpClient Http(string? bearer = null)
    {
        var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        if (bearer is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return http;
    }

    public HttpClient OperatorHttp() => Http(Credentials.OperatorKey);

    public Task<McpClient> ConnectAsync(string? agentToken = null, string path = "/mcp", bool getStream = true) =>
        McpClient.CreateAsync(Transport(agentToken, path, getStream));

    /// <summary>An SDK client transport to this host; <paramref name="knownSessionId"/> continues an existing session instead of opening one.</summary>
    public HttpClientTransport Transport(string? agentToken = null, string path = "/mcp", bool getStream = true, string? knownSessionId = null, bool ownsSession = true) =>
        new(new HttpClientTransportOptions
        {
            Endpoint = new Uri(BaseUrl, path),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + (agentToken ?? Credentials.AgentToken) },
            EnableStandaloneGetStream = getStream,
            KnownSessionId = knownSessionId,
            OwnsSession = ownsSession,
        });

    /// <summary>Sets a kill switch through the REST API and returns its id.</summary>
    public async Task<string> KillAsync(object body)
    {
        using var http = OperatorHttp();
        var response = await http.PostAsJsonAsync("/api/v1/kill-switches", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Setting a kill switch failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public async Task ClearAsync(string switchId)
    {
        using var http = OperatorHttp();
        var response = await http.PostAsJsonAsync($"/api/v1/kill-switches/{switchId}/clear", new { reason = "test over" });
        Assert.True(response.IsSuccessStatusCode, $"Clearing failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>Mints a token through the REST API and returns the bearer string and its id.</summary>
    public async Task<(string Token, string Id)> MintAsync(string tenantId, string agentId, string? userId = null, string[]? scopes = null, long? expiresInSeconds = null)
    {
        using var http = OperatorHttp();
        var response = await http.PostAsJsonAsync($"/api/v1/tenants/{tenantId}/tokens",
            new { agentId, userId, scopes = scopes ?? ["server:support-desk:read", "server:lab:read"], expiresInSeconds });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Minting failed: {(int)response.StatusCode} {text}");
        var root = JsonDocument.Parse(text).RootElement;
        return (root.GetProperty("token").GetString()!, root.GetProperty("id").GetString()!);
    }

    /// <summary>
    /// Calls an action tool the way an agent must: refused with REQUIRES_CONFIRMATION, approved by the admin
    /// operator through the API, then called again with the confirmation token.
    /// </summary>
    public async Task<ModelContextProtocol.Protocol.CallToolResult> CallConfirmedAsync(McpClient client, string tool, Dictionary<string, object?> arguments)
    {
        var first = await client.CallToolAsync(tool, arguments);
        Assert.True(first.IsError is true, "Expected REQUIRES_CONFIRMATION, got success.");
        var refusal = ControlPlane.Guard.Pipeline.Refusal.Read(first)!.Value;
        Assert.Equal("REQUIRES_CONFIRMATION", refusal.GetProperty("code").GetString());
        var approvalId = refusal.GetProperty("approval_id").GetString()!;

        using var http = OperatorHttp();
        var approve = await http.PostAsync($"/api/v1/approvals/{approvalId}/approve", null);
        var text = await approve.Content.ReadAsStringAsync();
        Assert.True(approve.IsSuccessStatusCode, $"Approving failed: {(int)approve.StatusCode} {text}");
        var token = JsonDocument.Parse(text).RootElement.GetProperty("confirmationToken").GetString();

        return await client.CallToolAsync(tool, new Dictionary<string, object?>(arguments) { ["confirmation_token"] = token });
    }

    public async Task SetModeAsync(string tenantId, string serverId, string mode)
    {
        using var http = OperatorHttp();
        var response = await http.PutAsJsonAsync($"/api/v1/tenants/{tenantId}/servers/{serverId}/mode", new { mode, reason = "test sets " + mode });
        Assert.True(response.IsSuccessStatusCode, $"Setting mode failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    public async Task EnsureTenantAsync(string tenantId)
    {
        using var http = OperatorHttp();
        var response = await http.PostAsJsonAsync("/api/v1/tenants", new { id = tenantId, name = tenantId });
        Assert.True(response.IsSuccessStatusCode, $"Creating tenant failed: {(int)response.StatusCode}");
    }

    private async Task WaitUntilReadyAsync()
    {
        using var http = Http();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/readyz")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }

            if (DateTime.UtcNow > deadline) throw new TimeoutException("The control plane did not become ready within 60 s.");
            await Task.Delay(100);
        }
    }

    private async Task<DemoCredentials> ReadCredentialsAsync()
    {
        var path = Path.Combine(DataDir, DemoCredentials.FileName);
        await using var stream = File.OpenRead(path);
        return (await JsonSerializer.DeserializeAsync<DemoCredentials>(stream, new JsonSerializerOptions(JsonSerializerDefaults.Web)))!;
    }

    public async Task StopAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _app.StopAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception)
        {
            // Already stopped, or the silo died with the test: nothing left to release.
        }

        await _app.DisposeAsync();
        if (_ownsDataDir)
        {
            try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }

            // Where stdio upstreams worked: a sibling of the data directory (ControlPlaneHostingExtensions.UpstreamWorkRoot).
            try { Directory.Delete(DataDir + "-upstreams", recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>One embedded host shared by the end-to-end tests of a collection (they run one after another).</summary>
public sealed class EmbeddedHostFixture : IAsyncLifetime
{
    public ControlPlaneTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneTestHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class EmbeddedHostCollection : ICollectionFixture<EmbeddedHostFixture>
{
    public const string Name = "embedded host";
}
