using ControlPlane.Audit;
using ControlPlane.Grains;
using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Tokens;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Orleans.TestingHost;

namespace ControlPlane.Tests.Cluster;

/// <summary>
/// A real multi-silo Orleans cluster (TestingHost) with ControlPlane's grains on SQLite and the guard
/// registered in every silo, exactly as the host registers them; tools are test doubles.
/// </summary>
public sealed class GuardCluster : IAsyncDisposable
{
    public const string ServerId = "srv";

    private GuardCluster(InProcessTestCluster cluster, string databasePath)
    {
        Cluster = cluster;
        DatabasePath = databasePath;
    }

    public InProcessTestCluster Cluster { get; }

    public string DatabasePath { get; }

    public IClusterClient Client => Cluster.Client;

    /// <param name="settings">Configuration on top of the cluster's defaults, e.g. a guard option under test.</param>
    /// <param name="faults">Faults every silo's grain store obeys (a database outage), or null for a healthy store.</param>
    /// <param name="configureSilo">Per-silo service changes, by silo name ("Primary", "Secondary_1", ...), after the guard's own.</param>
    public static async Task<GuardCluster> StartAsync(short silos = 2, string? databasePath = null, IReadOnlyDictionary<string, string?>? settings = null,
        StorageFaults? faults = null, Action<string, IServiceCollection>? configureSilo = null)
    {
        databasePath ??= Path.Combine(Path.GetTempPath(), "cp-cluster-" + Guid.NewGuid().ToString("N")[..12], "grains.db");
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddControlPlaneGrains(databasePath);
            if (faults is not null) silo.Services.AddStorageFaults(StorageNames.ControlPlane, faults);
        });
        builder.ConfigureSiloHost((silo, host) =>
        {
            host.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ControlPlane:GuardState:PollInterval"] = "00:00:00.200",
                ["ControlPlane:GuardState:StaleAfter"] = "00:00:02",
            });
            if (settings is not null) host.Configuration.AddInMemoryCollection(settings);
            host.Services.AddControlPlaneAudit(host.Configuration, Path.GetDirectoryName(databasePath)!, generateKey: true);
            host.Services.AddControlPlaneGuard(host.Configuration);
            host.Services.AddSingleton<IToolSource, ClusterTools>();
            configureSilo?.Invoke(silo.SiloName, host.Services);
        });

        var cluster = builder.Build();
        await cluster.DeployAsync();
        var guardCluster = new GuardCluster(cluster, databasePath);
        await guardCluster.WaitUntilLoadedAsync();
        return guardCluster;
    }

    public IReadOnlyList<IServiceProvider> SiloServices =>
        [.. Cluster.GetActiveSilos().Select(s => s.ServiceProvider)];

    public Task WaitUntilLoadedAsync() =>
        Eventually.TrueAsync(() => SiloServices.All(sp => sp.GetRequiredService<GuardStateCache>().IsLoaded), TimeSpan.FromSeconds(30),
            "every silo to load its guard state", poll: TimeSpan.FromMilliseconds(50));

    private static readonly ScopeGrant AllScopes = ScopeGrant.Parse([$"server:{ServerId}:read", $"server:{ServerId}:write", "server:srv2:read"]);

    /// <summary>Runs one call through a silo's real guard pipeline; returns the refusal or null.</summary>
    public static async Task<Refusal?> EvaluateAsync(IServiceProvider silo, CallIdentity identity)
    {
        var tool = silo.GetRequiredService<ToolCatalog>().Find(identity.ServerId, identity.ToolName)
            ?? throw new InvalidOperationException($"No tool {identity.ServerId}/{identity.ToolName} in the test catalog.");
        var token = new AgentToken("tok" + identity.AgentId, identity.TenantId, identity.AgentId, identity.UserId, [], [1], DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddHours(1), null, "test");
        return await silo.GetRequiredService<GuardPipeline>().EvaluateAsync(silo.GetRequiredService<GuardCallBuilder>().ForTool(identity, token, AllScopes, tool, null), CancellationToken.None);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
        }
    }

    public void DeleteDatabase()
    {
        try { Directory.Delete(Path.GetDirectoryName(DatabasePath)!, recursive: true); } catch (IOException) { }
    }

    /// <summary>Read and action tools on two servers, so every kill level has something in and out of scope.</summary>
    private sealed class ClusterTools : IToolSource
    {
        public IEnumerable<ToolDescriptor> GetTools() =>
        [
            Descriptor(ServerId, "read_tool", read: true),
            Descriptor(ServerId, "other_read", read: true),
            Descriptor(ServerId, "action_tool", read: false),
            Descriptor("srv2", "read_tool", read: true),
        ];

        private static ToolDescriptor Descriptor(string server, string name, bool read) => new(
            server,
            new Tool { Name = name, Annotations = new ToolAnnotations { ReadOnlyHint = read } },
            read ? ToolClassification.Read : ToolClassification.Action,
            static (_, _) => ValueTask.FromResult(new CallToolResult()),
            server + "__" + name);
    }
}
