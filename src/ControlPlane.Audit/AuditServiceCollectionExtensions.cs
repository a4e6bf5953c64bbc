using System.Security.Cryptography;
using ControlPlane.Audit.Redaction;
using ControlPlane.Audit.Storage;
using ControlPlane.Audit.Writing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace ControlPlane.Audit;

public static class AuditServiceCollectionExtensions
{
    /// <summary>
    /// Registers the audit trail: the store the configuration names (SQLite under <paramref name="dataDir"/>
    /// by default), its migration at start, the group-commit writer, the redactor and the keyed hasher.
    /// With <paramref name="generateKey"/> (the embedded default) a missing hash key is created once under the
    /// data directory; otherwise a missing key stops the host at start with a message naming the setting.
    /// </summary>
    public static IServiceCollection AddControlPlaneAudit(this IServiceCollection services, IConfiguration configuration, string dataDir, bool generateKey)
    {
        var section = configuration.GetSection(AuditOptions.SectionName);
        services.AddOptions<AuditOptions>()
            .Bind(section)
            .Validate(o => o.MaxBatch is >= 1 and <= 10_000, $"{AuditOptions.SectionName}:MaxBatch must be between 1 and 10000.")
            .Validate(o => o.QueueCapacity >= 1, $"{AuditOptions.SectionName}:QueueCapacity must be positive.")
            .Validate(o => o.RetentionDays >= 1, $"{AuditOptions.SectionName}:RetentionDays must be at least 1.")
            .Validate(o => o.Provider != AuditProvider.PostgreSQL || !string.IsNullOrWhiteSpace(o.ConnectionString),
                $"{AuditOptions.SectionName}:ConnectionString is required for the PostgreSQL audit store.")
            .ValidateOnStart();

        services.TryAddSingleton(sp => CreateStore(sp.GetRequiredService<IOptions<AuditOptions>>().Value, dataDir));
        services.TryAddSingleton(sp => new ArgumentHasher(ResolveKey(sp.GetRequiredService<IOptions<AuditOptions>>().Value, dataDir, generateKey)));
        services.TryAddSingleton(sp => new Redactor(new RedactionOptions { Pointers = sp.GetRequiredService<IOptions<AuditOptions>>().Value.RedactPointers }));
        services.AddHostedService<AuditSchemaStartup>();
        services.TryAddSingleton<AuditWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<AuditWriter>());
        return services;
    }

    /// <summary>The store the options name: PostgreSQL, or SQLite (by default <c>audit.db</c> under the data directory).</summary>
    public static IAuditStore CreateStore(AuditOptions options, string dataDir) => options.Provider switch
    {
        AuditProvider.PostgreSQL => new PostgresAuditStore(options.ConnectionString!),
        _ => new SqliteAuditStore(options.ConnectionString is { Length: > 0 } path ? path : Path.Combine(dataDir, "audit.db"), options.SqliteSynchronous),
    };

    private static byte[] ResolveKey(AuditOptions options, string dataDir, bool generateKey)
    {
        if (!string.IsNullOrWhiteSpace(options.HashKey))
        {
            var key = Convert.FromBase64String(options.HashKey);
            return key.Length >= 32 ? key : throw new OptionsValidationException(AuditOptions.SectionName, typeof(AuditOptions),
                [$"{AuditOptions.SectionName}:HashKey must be at least 32 bytes (base64)."]);
        }

        if (!generateKey)
        {
            throw new OptionsValidationException(AuditOptions.SectionName, typeof(AuditOptions),
                [$"{AuditOptions.SectionName}:HashKey is required: a base64 key of at least 32 bytes, the same on every silo."]);
        }

        // Embedded default: one key per data directory, created once, owner-only, shared by its silos. CreateNew decides
        // atomically which silo writes it; the others may open it before its one write lands, so they wait for it.
        var path = Path.Combine(dataDir, "audit-hash.key");
        if (File.Exists(path)) return ReadKey(path);

        Directory.CreateDirectory(dataDir);
        var fresh = RandomNumberGenerator.GetBytes(32);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var stream = new FileStream(path, fileOptions);
            using var writer = new StreamWriter(stream);
            writer.Write(Convert.ToBase64String(fresh));
            return fresh;
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another silo on the same data directory created it first: use that one.
            return ReadKey(path);
        }
    }

    private static byte[] ReadKey(string path)
    {
        const int KeyTextLength = 44; // base64 of 32 bytes
        for (var attempt = 0; ; attempt++)
        {
            var text = File.ReadAllText(path).Trim();
            if (text.Length >= KeyTextLength || attempt == 200)
            {
                var key = Convert.FromBase64String(text);
                return key.Length >= 32 ? key : throw new OptionsValidationException(AuditOptions.SectionName, typeof(AuditOptions),
                    [$"The audit hash key in {path} is shorter than 32 bytes; restore it from backup (records hashed under it cannot be re-checked otherwise)."]);
            }

            Thread.Sleep(10);
        }
    }
}

/// <summary>Brings the audit schema up to date before the host takes traffic.</summary>
internal sealed class AuditSchemaStartup(IAuditStore store) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => store.MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
