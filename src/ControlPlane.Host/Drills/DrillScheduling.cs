using ControlPlane.Drills;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Drills;

/// <summary>Makes sure the drill reminder matches configuration once the silo is up (registered, updated or removed).</summary>
internal sealed class DrillScheduling(
    IGrainFactory grains,
    IHostApplicationLifetime lifetime,
    IOptions<DrillOptions> options,
    ILogger<DrillScheduling> logger) : Hosting.ReminderRegistration(lifetime, logger)
{
    protected override string What => "kill-switch drills";

    protected override Task RegisterAsync()
    {
        var settings = options.Value;
        var scheduler = grains.GetGrain<IDrillSchedulerGrain>(IDrillSchedulerGrain.Singleton);
        return settings.Interval > TimeSpan.Zero ? scheduler.EnsureScheduledAsync(settings.Interval, settings.FirstRunDelay) : scheduler.UnscheduleAsync();
    }
}

internal static class DrillServiceCollectionExtensions
{
    /// <summary>Adds kill-switch drills: the synthetic probe tool, the runner the scheduler grain calls, and the schedule.</summary>
    public static IServiceCollection AddKillSwitchDrills(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(DrillOptions.SectionName);
        var problems = (section.Get<DrillOptions>() ?? new DrillOptions()).Validate().ToList();
        if (problems.Count > 0) throw new OptionsValidationException(DrillOptions.SectionName, typeof(DrillOptions), problems);

        services.AddOptions<DrillOptions>().Bind(section);
        services.AddSingleton<Guard.IToolSource, DrillToolSource>();
        services.AddSingleton<IKillSwitchDrillRunner, KillSwitchDrillRunner>();
        services.AddSingleton<Operations.DrillService>();
        services.AddHostedService<DrillScheduling>();
        return services;
    }
}
