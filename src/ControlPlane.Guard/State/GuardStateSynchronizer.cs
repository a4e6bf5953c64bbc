using ControlPlane.GuardState;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.State;

/// <summary>
/// Loads guard state when the silo starts and then checks its version on a short interval: the
/// backstop for a push this silo missed. Readiness waits for the first load.
/// </summary>
public sealed partial class GuardStateSynchronizer(
    IGrainFactory grains,
    GuardStateCache cache,
    IOptions<GuardStateOptions> options,
    TimeProvider time,
    ILogger<GuardStateSynchronizer> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var owner = grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        var interval = options.Value.PollInterval;
        var failures = 0;

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!cache.IsLoaded)
                {
                    cache.Apply(await owner.GetSnapshotAsync().WaitAsync(stoppingToken));
                    LogLoaded(logger, cache.Version, cache.ActiveSwitches.Count);
                }
                else
                {
                    await CatchUpAsync(owner, stoppingToken);
                }

                if (failures > 0) LogRecovered(logger, failures);
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Until the silo has joined, grain calls fail; keep trying. The cache goes stale on its
                // own clock, and the guard fails closed for actions while it is.
                if (failures++ % 10 == 0) LogPollFailed(logger, ex, failures);
            }

            try
            {
                await Task.Delay(cache.IsLoaded ? interval : TimeSpan.FromMilliseconds(200), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Confirms this silo holds what the owner holds (number and stamp), or takes the owner's state. A state older than
    /// this silo's is taken only if the owner still holds it after the fetch: a newer one may have been pushed meanwhile.
    /// </summary>
    private async Task CatchUpAsync(IGuardStateGrain owner, CancellationToken stoppingToken)
    {
        var held = await owner.GetVersionStampAsync().WaitAsync(stoppingToken);
        if (held == cache.Id)
        {
            cache.Confirm();
            return;
        }

        var snapshot = await owner.GetSnapshotAsync().WaitAsync(stoppingToken);
        if (snapshot.Version >= cache.Version)
        {
            cache.Apply(snapshot);
            return;
        }

        if (await owner.GetVersionStampAsync().WaitAsync(stoppingToken) == snapshot.Id)
        {
            LogReplaced(logger, cache.Version, snapshot.Version);
            cache.Replace(snapshot);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "This silo held guard state version {Held}, which the store never kept; it now holds the owner's version {Owner}.")]
    private static partial void LogReplaced(ILogger logger, long held, long owner);

    [LoggerMessage(Level = LogLevel.Information, Message = "Guard state loaded: version {Version}, {Active} active kill switches.")]
    private static partial void LogLoaded(ILogger logger, long version, int active);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not confirm guard state ({Failures} attempts so far).")]
    private static partial void LogPollFailed(ILogger logger, Exception ex, int failures);

    [LoggerMessage(Level = LogLevel.Information, Message = "Guard state confirmed again after {Failures} failed attempts.")]
    private static partial void LogRecovered(ILogger logger, int failures);
}
