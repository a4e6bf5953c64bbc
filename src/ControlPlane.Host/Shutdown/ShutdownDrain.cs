using ControlPlane.Host.Hosting;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Shutdown;

/// <summary>
/// At SIGTERM, before anything stops: <c>/readyz</c> turns 503 and the silo keeps serving for the drain delay, so a
/// load balancer moves clients elsewhere and only calls still in flight when the silo does stop are lost. Runs in the
/// host's "stopping" phase, ahead of every hosted service's stop (Kestrel's and the silo's among them).
/// </summary>
public sealed partial class ShutdownDrain(IOptions<ControlPlaneOptions> options, TimeProvider time, ILogger<ShutdownDrain> logger) : IHostedLifecycleService
{
    private volatile bool _draining;

    /// <summary>True from SIGTERM on: the silo still serves, but tells load balancers not to send it more.</summary>
    public bool IsDraining => _draining;

    public TimeSpan Delay => options.Value.Shutdown.EffectiveDrainDelay(options.Value.IsProduction);

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        var delay = Delay;
        if (delay <= TimeSpan.Zero) return;
        LogDraining(logger, delay.TotalSeconds);
        try
        {
            await Task.Delay(delay, time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout ran out first: stop now.
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stopping: /readyz answers 503 and this silo keeps serving for {Seconds} s so load balancers move clients away.")]
    private static partial void LogDraining(ILogger logger, double seconds);
}
