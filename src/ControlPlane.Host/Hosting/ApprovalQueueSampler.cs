using ControlPlane.Approvals;
using ControlPlane.Guard;
using ControlPlane.Tenants;

namespace ControlPlane.Host.Hosting;

/// <summary>
/// Counts pending approvals across tenants for the <c>controlplane.approvals.pending</c> gauge. Counting takes grain
/// calls, so it runs in the background every <see cref="Interval"/> instead of inside a metrics scrape.
/// </summary>
internal sealed partial class ApprovalQueueSampler(
    IGrainFactory grains,
    GuardMetrics metrics,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ApprovalQueueSampler> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                metrics.SetPendingApprovals(await CountAsync());
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogSampleFailed(logger, ex);
            }

            try
            {
                await Task.Delay(Interval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<long> CountAsync()
    {
        var now = time.GetUtcNow();
        long pending = 0;
        foreach (var tenant in await grains.GetGrain<ITenantDirectoryGrain>(ITenantDirectoryGrain.Singleton).ListAsync())
        {
            foreach (var id in await grains.GetGrain<IApprovalIndexGrain>(tenant.Id).ListAsync())
            {
                // The index keeps requests until someone lists them; count only those still open.
                if (await grains.GetGrain<IApprovalGrain>(id).GetAsync() is { Status: ApprovalStatus.Pending } view && view.Request.ExpiresAt > now) pending++;
            }
        }

        return pending;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not count pending approvals for metrics; will retry.")]
    private static partial void LogSampleFailed(ILogger logger, Exception ex);
}
