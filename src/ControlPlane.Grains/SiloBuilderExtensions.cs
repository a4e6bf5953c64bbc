using ControlPlane.Grains.GuardState;
using ControlPlane.Grains.Sessions;
using ControlPlane.Grains.Storage;
using ControlPlane.GuardState;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Providers;
using Orleans.Serialization.Configuration;
using Orleans.Storage;

namespace ControlPlane.Grains;

public static class SiloBuilderExtensions
{
    /// <summary>
    /// Adds ControlPlane's grains to a silo: durable state in SQLite at <paramref name="databasePath"/>
    /// (the embedded default) and the receiver through which guard state reaches this silo.
    /// </summary>
    public static ISiloBuilder AddControlPlaneGrains(this ISiloBuilder silo, string databasePath)
    {
        silo.AddSqliteGrainStorage(StorageNames.ControlPlane, options => options.DatabasePath = databasePath);
        silo.Services.AddSingleton<ISessionRecordSweeper>(static sp =>
            new SqliteSessionRecordSweeper((SqliteGrainStorage)sp.GetRequiredKeyedService<IGrainStorage>(StorageNames.ControlPlane)));
        // Reminders only schedule work (audit retention); every silo start re-registers them.
        silo.UseInMemoryReminderService();
        return silo.AddGrainClock().AddGuardStateReceiver();
    }

    /// <summary>
    /// Adds ControlPlane's grains to a silo of a production cluster: grain state and reminders in the database
    /// behind <paramref name="connectionString"/>, through Orleans' ADO.NET providers (Orleans' PostgreSQL scripts
    /// must have been applied). State is serialized by the silo's default grain storage serializer, as in the
    /// embedded default, so the same state classes work in both. The caller registers the
    /// <see cref="ISessionRecordSweeper"/> for the database.
    /// </summary>
    public static ISiloBuilder AddControlPlaneGrainsOnAdoNet(this ISiloBuilder silo, string invariant, string connectionString)
    {
        silo.AddAdoNetGrainStorage(StorageNames.ControlPlane, options =>
        {
            options.Invariant = invariant;
            options.ConnectionString = connectionString;
        });
        silo.UseAdoNetReminderService(options =>
        {
            options.Invariant = invariant;
            options.ConnectionString = connectionString;
        });
        return silo.AddGrainClock().AddGuardStateReceiver();
    }

    /// <summary>Registers the per-silo end of guard state pushes. Needs an <see cref="IGuardStateListener"/>.</summary>
    public static ISiloBuilder AddGuardStateReceiver(this ISiloBuilder silo)
    {
        // The receiver's type travels as the generic argument of the management grain's call, so the
        // serializer must be told it is a type silos may name to each other.
        silo.Services.Configure<TypeManifestOptions>(options => options.AddAllowedType(typeof(GuardStateReceiver)));
        silo.Services.AddKeyedSingleton<IControllable>(
            GuardStateReceiver.ProviderName,
            static (sp, _) => new GuardStateReceiver(sp.GetRequiredService<IGuardStateListener>()));
        return silo;
    }

    // Grains that keep time (sessions, retention) take the clock from the container.
    private static ISiloBuilder AddGrainClock(this ISiloBuilder silo)
    {
        silo.Services.TryAddSingleton(TimeProvider.System);
        return silo;
    }
}
