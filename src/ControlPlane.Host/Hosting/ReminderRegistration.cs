namespace ControlPlane.Host.Hosting;

/// <summary>
/// Registers a grain reminder once the silo is up, retrying until the cluster can take it: right after start the
/// reminder table or the grain's silo may not answer yet, and a schedule that silently never exists is worse than late.
/// </summary>
internal abstract partial class ReminderRegistration(IHostApplicationLifetime lifetime, ILogger logger) : BackgroundService
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>What is being scheduled, for the log ("audit retention").</summary>
    protected abstract string What { get; }

    /// <summary>Makes the schedule match configuration; throws while the cluster cannot take it yet.</summary>
    protected abstract Task RegisterAsync();

    protected sealed override async Task ExecuteAsync(CancellationToken stoppingToken)
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
                await RegisterAsync();
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt % 10 == 1) LogScheduleFailed(logger, ex, What, attempt);
                await Task.Delay(RetryDelay, stoppingToken);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not schedule {What} yet (attempt {Attempt}); retrying.")]
    private static partial void LogScheduleFailed(ILogger logger, Exception ex, string what, int attempt);
}
