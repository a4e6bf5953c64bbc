namespace ControlPlane.Host.Shutdown;

/// <summary>How a silo stops, bound from <c>ControlPlane:Shutdown</c>.</summary>
public sealed class ShutdownOptions
{
    /// <summary>
    /// How long a silo keeps serving after SIGTERM with <c>/readyz</c> answering 503, so a load balancer takes it out
    /// of rotation before it stops: 10 s in the production profile, none in the embedded default (a developer's
    /// Ctrl+C). Keep a Kubernetes pod's terminationGracePeriodSeconds above it plus the silo's own stop.
    /// </summary>
    public TimeSpan? DrainDelay { get; set; }

    public TimeSpan EffectiveDrainDelay(bool production) => DrainDelay ?? (production ? TimeSpan.FromSeconds(10) : TimeSpan.Zero);

    public IEnumerable<string> Validate(string section)
    {
        if (DrainDelay is { } delay && (delay < TimeSpan.Zero || delay > TimeSpan.FromMinutes(5)))
        {
            yield return $"{section}:DrainDelay must be between 0 and 5 minutes.";
        }
    }
}
