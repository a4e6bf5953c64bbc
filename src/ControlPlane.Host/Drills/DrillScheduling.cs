using ControlPlane.Drills;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Drills;

/// <summary>Makes sure the drill reminder matches configuration once the silo is up (registered, updated or removed).</summary>
internal sealed partial class DrillScheduling(
    IGrainFactory grains,
    IHostApplicationLifetime lifetime,
    IOptions<DrillOptions> options,
    ILogger<DrillScheduling> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        var settings = options.Value;
        for (var attempt = 1; !stoppingToken.IsCancellationRequested; attempt++)
        {
            try
            {
                var scheduler = grains.GetGrain<IDrillSchedulerGrain>(IDrillSchedulerGrain.Singleton);
                if (settings.Interval > TimeSpan.Zero) await scheduler.EnsureScheduledAsync(settings.Interval, settings.FirstRunDelay);
                else await scheduler.UnscheduleAsync();
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt % 10 == 1) LogScheduleFailed(logger, ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not schedule kill-switch drills yet (attempt {Attempt}); retrying.")]
    private static partial void LogScheduleFailed(ILogger logger, Exception ex, int attempt);
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
