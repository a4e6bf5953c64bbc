using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using ControlPlane.Audit.Storage;
using ControlPlane.Guard.Authentication;
using ControlPlane.Host.Hosting;
using ControlPlane.Tests.Audit;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol.Client;
using Npgsql;

namespace ControlPlane.Tests.Production;

/// <summary>
/// Three real host processes in the production profile, sharing one fresh PostgreSQL database (created for this
/// run, so concurrent runs never meet, and dropped afterwards). The admin operator comes from the documented
/// bootstrap: a key made here, its hash in <c>ControlPlane:Bootstrap:AdminKeyHash</c>.
/// </summary>
public sealed class PostgresClusterFixture : IAsyncLifetime
{
    public const int SiloCount = 3;
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(150);
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);

    private readonly string _adminConnectionString =
        Environment.GetEnvironmentVariable(PostgresAuditServer.EnvironmentVariable) is { Length: > 0 } configured
            ? configured
            : "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "cp-pgcluster-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly string _database = "cp_cluster_" + Guid.NewGuid().ToString("N")[..16];

    public IReadOnlyList<ProductionSilo> Silos { get; private set; } = [];

    public string AdminKey { get; private set; } = "";

    /// <summary>The cluster's Orleans service id (each fixture's database name).</summary>
    public string ServiceId => _database;

    /// <summary>The cluster's shared certificate (.pfx, password <see cref="TestCertificates.Password"/>).</summary>
    public string CertificatePath { get; private set; } = "";

    /// <summary>The cluster's id in the membership table.</summary>
    public string ClusterId => _database;

    public string ConnectionString => new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = _database }.ToString();

    public async Task InitializeAsync()
    {
        await using (var admin = new NpgsqlConnection(_adminConnectionString))
        {
            await admin.OpenAsync();
            // CREATE DATABASE takes no parameters; the name is made here from hex digits only.
            await using var create = new NpgsqlCommand($"CREATE DATABASE {_database}", admin);
            await create.ExecuteNonQueryAsync();
        }

        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, "admin");
        AdminKey = key;
        Directory.CreateDirectory(_root);
        var environment = new Dictionary<string, string>
        {
            ["ControlPlane__Profile"] = "Production",
            ["ConnectionStrings__ControlPlane"] = ConnectionString,
            ["ControlPlane__ClusterId"] = _database,
            ["ControlPlane__ServiceId"] = _database,
            ["ControlPlane__Audit__HashKey"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ["ControlPlane__Bootstrap__AdminKeyHash"] = BootstrapOptions.FormatHash(hash),
            // Production silos talk mutual TLS or not at all: one certificate shared by the cluster.
            ["ControlPlane__Cluster__Tls__CertificatePath"] = CertificatePath = TestCertificates.CreatePfx(_root, "cluster", "CN=controlplane-cluster"),
            ["ControlPlane__Cluster__Tls__Password"] = TestCertificates.Password,
            // The load is about availability, not politeness: buckets far above what the test can spend.
            ["ControlPlane__RateLimits__Tenant__Capacity"] = "10000000",
            ["ControlPlane__RateLimits__Tenant__RefillPerSecond"] = "10000000",
            ["ControlPlane__RateLimits__Agent__Capacity"] = "10000000",
            ["ControlPlane__RateLimits__Agent__RefillPerSecond"] = "10000000",
            ["ControlPlane__RateLimits__User__Capacity"] = "10000000",
            ["ControlPlane__RateLimits__User__RefillPerSecond"] = "10000000",
            ["Logging__LogLevel__Default"] = "Warning",
            // A short drain: the rolling restarts still go through it, without the production default's 10 s each.
            ["ControlPlane__Shutdown__DrainDelay"] = "00:00:02",
        };

        Silos = [.. Enumerable.Range(0, SiloCount).Select(i => new ProductionSilo(i, Path.Combine(_root, "silo" + i), environment))];
        try
        {
            // All at once: the silos race to apply Orleans' schema and the audit migrations to the empty database.
            await Task.WhenAll(Silos.Select(s => s.StartAsync(StartTimeout)));
        }
        catch
        {
            // xunit does not dispose a fixture whose initialisation failed: leave no process or database behind.
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>Brings back any silo an earlier test left stopped, so each test starts with the whole cluster.</summary>
    public async Task EnsureAllRunningAsync() =>
        await Task.WhenAll(Silos.Where(s => !s.IsRunning).Select(s => s.StartAsync(StartTimeout)));

    public HttpClient Operator(ProductionSilo silo)
    {
        var http = new HttpClient { BaseAddress = silo.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        return http;
    }

    public async Task EnsureTenantAsync(ProductionSilo silo, string tenantId)
    {
        using var http = Operator(silo);
        var response = await http.PostAsJsonAsync("/api/v1/tenants", new { id = tenantId, name = tenantId });
        Assert.True(response.IsSuccessStatusCode || response.StatusCode == System.Net.HttpStatusCode.Conflict,
            $"Creating tenant {tenantId} on silo {silo.Index} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    public async Task<string> MintAsync(ProductionSilo silo, string tenantId, string agentId, params string[] scopes)
    {
        using var http = Operator(silo);
        var response = await http.PostAsJsonAsync($"/api/v1/tenants/{tenantId}/tokens",
            new { agentId, scopes = scopes.Length > 0 ? scopes : ["server:support-desk:read"] });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Minting on silo {silo.Index} failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("token").GetString()!;
    }

    public async Task<string> KillAsync(ProductionSilo silo, object body)
    {
        using var http = Operator(silo);
        var response = await http.PostAsJsonAsync("/api/v1/kill-switches", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Setting a kill switch on silo {silo.Index} failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    public async Task ClearAsync(ProductionSilo silo, string switchId)
    {
        using var http = Operator(silo);
        var response = await http.PostAsJsonAsync($"/api/v1/kill-switches/{switchId}/clear", new { reason = "drill over" });
        Assert.True(response.IsSuccessStatusCode, $"Clearing on silo {silo.Index} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>GET on the operator API, asserting success; returns the JSON body.</summary>
    public async Task<JsonElement> GetAsync(ProductionSilo silo, string path)
    {
        using var http = Operator(silo);
        var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {path} on silo {silo.Index} failed: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<JsonElement> SendAsync(ProductionSilo silo, HttpMethod method, string path, object? body)
    {
        using var http = Operator(silo);
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path} on silo {silo.Index} failed: {(int)response.StatusCode} {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<IReadOnlyList<string>> ActiveSwitchIdsAsync(ProductionSilo silo)
    {
        using var http = Operator(silo);
        var response = await http.GetAsync("/api/v1/kill-switches");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Listing kill switches on silo {silo.Index} failed: {(int)response.StatusCode} {text}");
        return [.. JsonDocument.Parse(text).RootElement.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!)];
    }

    public static Task<McpClient> ConnectAsync(ProductionSilo silo, string agentToken, CancellationToken cancellationToken = default) =>
        McpClient.CreateAsync(
            new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(silo.BaseUrl, "/mcp"),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + agentToken },
            }),
            cancellationToken: cancellationToken);

    public PostgresAuditStore OpenAuditStore() => new(ConnectionString);

    public string DescribeSilos() => string.Join("\n\n", Silos.Select(s => $"--- silo {s.Index} (running: {s.IsRunning}) ---\n{s.RecentOutput()}"));

    public async Task DisposeAsync()
    {
        foreach (var silo in Silos) await silo.DisposeAsync();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }

        await using var admin = new NpgsqlConnection(_adminConnectionString);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
