using ControlPlane.Audit.Writing;
using ControlPlane.Auditing;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Hosting;

/// <summary>Makes sure the audit retention reminder exists once the silo is up.</summary>
internal sealed partial class AuditRetentionScheduler(
    IGrainFactory grains,
    IHostApplicationLifetime lifetime,
    IOptions<AuditOptions> options,
    ILogger<AuditRetentionScheduler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        for (var attempt = 1; !stoppingToken.IsCancellationRequested; attempt++)
        {
            try
            {
                await grains.GetGrain<IAuditRetentionGrain>(IAuditRetentionGrain.Singleton).EnsureScheduledAsync(options.Value.RetentionRunInterval);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt % 10 == 1) LogScheduleFailed(logger, ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not schedule audit retention yet (attempt {Attempt}); retrying.")]
    private static partial void LogScheduleFailed(ILogger logger, Exception ex, int attempt);
}
