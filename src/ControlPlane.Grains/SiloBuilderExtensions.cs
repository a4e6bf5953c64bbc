using ControlPlane.Grains.GuardState;
using ControlPlane.Grains.Sessions;
using ControlPlane.Grains.Storage;
using ControlPlane.GuardState;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        return silo.AddGrainClock().AddGuardStatePush();
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
        return silo.AddGrainClock().AddGuardStatePush();
    }

    /// <summary>Registers the per-silo end of guard state pushes and the owner's way to reach it. Needs an <see cref="IGuardStateListener"/>.</summary>
    public static ISiloBuilder AddGuardStatePush(this ISiloBuilder silo)
    {
        silo.AddGrainService<GuardStatePushService>();
        silo.Services.AddSingleton<GuardStatePushClient>();
        silo.Services.AddOptions<GuardStatePushOptions>().BindConfiguration(GuardStatePushOptions.SectionName);
        silo.Services.AddOptions<GuardStateBoundsOptions>().BindConfiguration(GuardStateBoundsOptions.SectionName)
            .Validate(static o => !o.Validate().Any(), GuardStateBoundsOptions.SectionName + ":MaxRecordBytes must be between 16384 (16 KiB) and 268435456 (256 MiB).")
            .ValidateOnStart();
        return silo;
    }

    // Grains that keep time (sessions, retention) take the clock from the container.
    private static ISiloBuilder AddGrainClock(this ISiloBuilder silo)
    {
        silo.Services.TryAddSingleton(TimeProvider.System);
        return silo;
    }
}
