using ControlPlane.Audit;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Host.Hosting;

namespace ControlPlane.Host.Cluster;

/// <summary>
/// Commands for setting up a production cluster without starting a silo:
/// <c>operators new-key [--id admin]</c> prints a new operator key once, with the hash to put in
/// <c>ControlPlane:Bootstrap:AdminKeyHash</c>; <c>db migrate</c> applies Orleans' schema and the audit
/// migrations to the database named by <c>ConnectionStrings:ControlPlane</c>.
/// </summary>
internal static class ClusterCommands
{
    public static int NewOperatorKey(string[] args)
    {
        if (args is not ["new-key", ..])
        {
            Console.Error.WriteLine("usage: ControlPlane.Host operators new-key [--id <operatorId>]");
            return 2;
        }

        var idAt = Array.IndexOf(args, "--id");
        var id = idAt >= 0 && idAt + 1 < args.Length ? args[idAt + 1] : new BootstrapOptions().AdminId;
        if (!Identifiers.IsValidReference(id) || id.Contains('_'))
        {
            Console.Error.WriteLine($"'{id}' is not a valid operator id (letters, digits and dashes).");
            return 2;
        }

        var (_, key, hash) = SecretTokens.Create(SecretTokens.OperatorPrefix, id);
        // The key goes to the person at the terminal, once; only its hash goes into configuration.
        Console.WriteLine($"""
            operator key (shown once; store it in your secret manager): {key}
            configuration for every silo:
              ControlPlane__Bootstrap__AdminId={id}
              ControlPlane__Bootstrap__AdminKeyHash={BootstrapOptions.FormatHash(hash)}
            """);
        return 0;
    }

    public static async Task<int> MigrateDatabaseAsync(string[] args)
    {
        if (args is not ["migrate", ..])
        {
            await Console.Error.WriteLineAsync("usage: ControlPlane.Host db migrate [--ConnectionStrings:ControlPlane=<cs>]");
            return 2;
        }

        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args[1..])
            .Build();
        var connectionString = configuration.GetConnectionString(ControlPlaneOptions.ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            await Console.Error.WriteLineAsync($"db migrate needs ConnectionStrings:{ControlPlaneOptions.ConnectionStringName} (environment ConnectionStrings__{ControlPlaneOptions.ConnectionStringName}).");
            return 2;
        }

        foreach (var script in await OrleansSchema.MigrateAsync(connectionString, CancellationToken.None))
        {
            Console.WriteLine($"applied Orleans schema script {script}");
        }

        ProductionCluster.DefaultAuditToClusterDatabase(configuration, connectionString);
        var audit = configuration.GetSection(AuditOptions.SectionName).Get<AuditOptions>() ?? new AuditOptions();
        if (audit.Provider == AuditProvider.PostgreSQL)
        {
            var store = AuditServiceCollectionExtensions.CreateStore(audit, Path.GetTempPath());
            await store.MigrateAsync(CancellationToken.None);
            if (store is IAsyncDisposable disposable) await disposable.DisposeAsync();
            Console.WriteLine("audit schema is up to date");
        }

        Console.WriteLine("Orleans schema is up to date");
        return 0;
    }
}
