using ControlPlane.Guard.State;
using ControlPlane.Host.Hosting;
using ControlPlane.Operators;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Seeding;

/// <summary>
/// Production seeds nothing, so the first admin operator comes from <c>ControlPlane:Bootstrap:AdminKeyHash</c>
/// (the hash of a key printed once by <c>operators new-key</c>). It is added only while the operator directory is
/// empty, atomically in the directory grain, so every silo may try at start and later starts change nothing.
/// </summary>
internal sealed partial class AdminBootstrapper(
    IOptions<ControlPlaneOptions> options,
    GuardStateCache guardState,
    IGrainFactory grains,
    TimeProvider time,
    ILogger<AdminBootstrapper> logger) : BackgroundService
{
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the bootstrap is done (or not needed); readiness waits for it.</summary>
    public Task Completion => _completion.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var settings = options.Value;
            if (!settings.IsProduction || settings.Bootstrap.KeyHashBytes is not { } keyHash) return;

            // Guard state loaded means the silo has joined and grain calls can be made.
            while (!guardState.IsLoaded) await Task.Delay(100, stoppingToken);

            var admin = new OperatorAccount(settings.Bootstrap.AdminId, [.. OperatorRoles.All], [], keyHash, time.GetUtcNow());
            var directory = grains.GetGrain<IOperatorDirectoryGrain>(IOperatorDirectoryGrain.Singleton);
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    if (await directory.AddFirstAsync(admin)) LogBootstrapped(logger, admin.Id);
                    break;
                }
                catch (Exception ex) when (attempt < 10 && !stoppingToken.IsCancellationRequested && ex is not OperationCanceledException)
                {
                    // A cluster still forming can refuse the first calls; try again shortly.
                    LogRetry(logger, ex.Message);
                    await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            LogFailed(logger, ex);
        }
        finally
        {
            _completion.TrySetResult();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Bootstrapped the first admin operator '{OperatorId}' from ControlPlane:Bootstrap:AdminKeyHash. It has no effect once any operator exists.")]
    private static partial void LogBootstrapped(ILogger logger, string operatorId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bootstrapping the admin operator failed ({Problem}); retrying.")]
    private static partial void LogRetry(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "Bootstrapping the admin operator from ControlPlane:Bootstrap:AdminKeyHash failed.")]
    private static partial void LogFailed(ILogger logger, Exception ex);
}
