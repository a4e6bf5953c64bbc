using Orleans.Runtime;
using Polly;
using Polly.Retry;

namespace ControlPlane.Host.Operations;

/// <summary>
/// Lets protective operator actions ride out a silo's crash. Until the cluster's probes declare a crashed silo dead
/// (seconds), calls to grains that were active on it are rejected without being delivered. A kill switch or a
/// revocation must not bounce off that window with a 503 during an incident, so these calls are retried until the
/// grain is reachable again, elsewhere. Only undelivered or orphaned calls are retried, and only for idempotent
/// steps (set a switch, revoke, read): a retried protective action is applied once and audited once.
/// </summary>
internal static class SiloFailover
{
    /// <summary>Roughly 20 s of retries: longer than a default death declaration, shorter than an operator's HTTP timeout.</summary>
    private static readonly ResiliencePipeline Pipeline = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<OrleansMessageRejectionException>().Handle<SiloUnavailableException>(),
            BackoffType = DelayBackoffType.Exponential,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(1),
            MaxRetryAttempts = 24,
            UseJitter = true,
        })
        .Build();

    public static async Task<T> RideOutAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken = default) =>
        await Pipeline.ExecuteAsync(static async (state, _) => await state(), call, cancellationToken);
}
