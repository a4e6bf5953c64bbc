using System.Text.Json;
using ControlPlane.Audit;
using ControlPlane.Audit.Writing;

namespace ControlPlane.Host.Hosting;

/// <summary>
/// <c>dotnet run --project src/ControlPlane.Host -- audit verify --tenant demo</c>: walks a tenant's audit chain
/// in the configured store (same configuration keys as the host) without starting a silo. Exit code 0 when
/// the chain verifies, 1 when it is broken, 2 for a usage error.
/// </summary>
internal static class AuditCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args is not ["verify", ..])
        {
            await Console.Error.WriteLineAsync("usage: ControlPlane.Host audit verify --tenant <tenantId> [--ControlPlane:DataDir=<dir>] [--ControlPlane:Audit:Provider=PostgreSQL --ControlPlane:Audit:ConnectionString=<cs>]");
            return 2;
        }

        var rest = args[1..];
        var tenantAt = Array.IndexOf(rest, "--tenant");
        var tenant = tenantAt >= 0 && tenantAt + 1 < rest.Length ? rest[tenantAt + 1] : null;
        if (!Identifiers.IsValidTenantId(tenant) && tenant != ControlPlane.Audit.Model.AuditTenants.Cluster)
        {
            await Console.Error.WriteLineAsync("audit verify needs --tenant <tenantId> (or _cluster, the chain of cluster-wide operator actions).");
            return 2;
        }

        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine([.. rest.Where((_, i) => i != tenantAt && i != tenantAt + 1)])
            .Build();
        var settings = configuration.GetSection(ControlPlaneOptions.SectionName).Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
        var audit = configuration.GetSection(AuditOptions.SectionName).Get<AuditOptions>() ?? new AuditOptions();

        var sqlitePath = audit.ConnectionString is { Length: > 0 } path ? path : Path.Combine(settings.FullDataDir, "audit.db");
        if (audit.Provider == AuditProvider.Sqlite && !File.Exists(sqlitePath))
        {
            await Console.Error.WriteLineAsync($"No audit database at {sqlitePath}; pass --ControlPlane:DataDir=<the host's data directory>.");
            return 2;
        }

        var store = AuditServiceCollectionExtensions.CreateStore(audit, settings.FullDataDir);
        await store.MigrateAsync(CancellationToken.None);
        var result = await store.VerifyAsync(tenant!, CancellationToken.None);
        Console.WriteLine(JsonSerializer.Serialize(new { tenantId = tenant, ok = result.Ok, @checked = result.Checked, firstBroken = result.FirstBroken, problem = result.Problem }));
        return result.Ok ? 0 : 1;
    }
}
