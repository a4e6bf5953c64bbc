using System.Net;
using System.Net.Sockets;
using ControlPlane.Grains;
using ControlPlane.Host.Hosting;
using Orleans.Configuration;

namespace ControlPlane.Host.Cluster;

/// <summary>The production profile's silo: membership, grain state and reminders on PostgreSQL.</summary>
internal static partial class ProductionCluster
{
    /// <summary>Orleans' ADO.NET invariant for PostgreSQL (the providers default to SQL Server).</summary>
    public const string Invariant = "Npgsql";

    public static ISiloBuilder UseProductionCluster(this ISiloBuilder silo, ControlPlaneOptions settings, string connectionString)
    {
        silo.Configure<ClusterOptions>(options =>
        {
            options.ClusterId = settings.ClusterId;
            options.ServiceId = settings.ServiceId;
        });

        if (settings.Kubernetes)
        {
            // Takes the pod's IP and the cluster/service ids from the pod's labels and deletes pods of dead silos.
            silo.UseKubernetesHosting();
        }
        else if (settings.AdvertisedIPAddress is { Length: > 0 } address)
        {
            silo.ConfigureEndpoints(IPAddress.Parse(address), settings.SiloPort, settings.GatewayPort, listenOnAnyHostAddress: true);
        }
        else
        {
            silo.ConfigureEndpoints(settings.SiloPort, settings.GatewayPort, AddressFamily.InterNetwork, listenOnAnyHostAddress: true);
        }

        if (!settings.Cluster.EnableGateway)
        {
            // No gateway unless asked for: a port 0 gateway is none, also under UseKubernetesHosting (which opens one
            // only for a positive port), and the membership table then advertises no gateway for clients to find.
            silo.Configure<EndpointOptions>(options =>
            {
                options.GatewayPort = 0;
                options.GatewayListeningEndpoint = null;
            });
        }

        silo.AddFastDeathDetection();
        silo.UseAdoNetClustering(options =>
        {
            options.Invariant = Invariant;
            options.ConnectionString = connectionString;
        });
        silo.Services.AddSingleton<ControlPlane.Grains.Sessions.ISessionRecordSweeper>(new AdoNetSessionRecordSweeper(connectionString, settings.ServiceId));
        return silo.AddControlPlaneGrainsOnAdoNet(Invariant, connectionString);
    }

    /// <summary>
    /// Production audit goes to the same database unless configured otherwise: fills in
    /// <c>ControlPlane:Audit:Provider</c> and <c>ConnectionString</c> where they are not set.
    /// </summary>
    public static void DefaultAuditToClusterDatabase(IConfiguration configuration, string connectionString)
    {
        const string Audit = "ControlPlane:Audit";
        if (string.IsNullOrEmpty(configuration[$"{Audit}:Provider"])) configuration[$"{Audit}:Provider"] = "PostgreSQL";
        if (string.IsNullOrEmpty(configuration[$"{Audit}:ConnectionString"])
            && string.Equals(configuration[$"{Audit}:Provider"], "PostgreSQL", StringComparison.OrdinalIgnoreCase))
        {
            configuration[$"{Audit}:ConnectionString"] = connectionString;
        }
    }
}

/// <summary>
/// Brings Orleans' schema up to date before the silo starts (registered ahead of the silo, and hosted services
/// start in order), so the first silo of a new database needs no separate step.
/// </summary>
internal sealed partial class OrleansSchemaStartup(string connectionString, ILogger<OrleansSchemaStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string> applied;
        try
        {
            applied = await OrleansSchema.MigrateAsync(connectionString, cancellationToken);
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException)
        {
            throw new InvalidOperationException(
                $"Could not bring Orleans' schema up to date in the database named by ConnectionStrings:{ControlPlaneOptions.ConnectionStringName} ({ex.Message}). " +
                "Check that PostgreSQL is reachable and the user may create tables, or apply ops/sql/orleans/postgresql/*.sql with `ControlPlane.Host db migrate`.", ex);
        }

        foreach (var script in applied) LogApplied(logger, script);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied Orleans schema script {Script}.")]
    private static partial void LogApplied(ILogger logger, string script);
}
