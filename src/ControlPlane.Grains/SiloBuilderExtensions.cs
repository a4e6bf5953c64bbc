using ControlPlane.Grains.GuardState;
using ControlPlane.Grains.Storage;
using ControlPlane.GuardState;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Providers;
using Orleans.Serialization.Configuration;

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
        // Reminders only schedule work (audit retention); every silo start re-registers them.
        silo.UseInMemoryReminderService();
        return silo.AddGuardStateReceiver();
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
}
