using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Providers;
using Orleans.Runtime.Hosting;
using Orleans.Storage;

namespace ControlPlane.Grains.Storage;

public static class SqliteGrainStorageExtensions
{
    /// <summary>Registers SQLite grain storage as the provider used by grains that name no storage provider.</summary>
    public static ISiloBuilder AddSqliteGrainStorageAsDefault(this ISiloBuilder builder, Action<SqliteGrainStorageOptions> configure) =>
        builder.AddSqliteGrainStorage(ProviderConstants.DEFAULT_STORAGE_PROVIDER_NAME, configure);

    /// <summary>Registers SQLite grain storage under <paramref name="name"/>, the name grains pass to <c>[PersistentState]</c>.</summary>
    public static ISiloBuilder AddSqliteGrainStorage(this ISiloBuilder builder, string name, Action<SqliteGrainStorageOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(configure);

        var services = builder.Services;
        services.AddOptions<SqliteGrainStorageOptions>(name).Configure(configure);
        services.ConfigureNamedOptionForLogging<SqliteGrainStorageOptions>(name);
        services.AddTransient<IConfigurationValidator>(sp => new SqliteGrainStorageOptionsValidator(
            sp.GetRequiredService<IOptionsMonitor<SqliteGrainStorageOptions>>().Get(name), name));

        // The factory must return the concrete type: AddGrainStorage only wires the silo lifecycle
        // (schema creation at start) when the declared type implements ILifecycleParticipant<ISiloLifecycle>.
        services.AddGrainStorage(name, Create);
        return builder;
    }

    private static SqliteGrainStorage Create(IServiceProvider services, string name)
    {
        var options = services.GetRequiredService<IOptionsMonitor<SqliteGrainStorageOptions>>().Get(name);

        // Same precedence as Orleans' own providers: a serializer keyed by provider name overrides the silo-wide one.
        var serializer = services.GetKeyedService<IGrainStorageSerializer>(name)
            ?? services.GetRequiredService<IGrainStorageSerializer>();

        return new SqliteGrainStorage(
            name,
            options,
            serializer,
            services.GetRequiredService<ILogger<SqliteGrainStorage>>(),
            services.GetService<TimeProvider>());
    }
}
