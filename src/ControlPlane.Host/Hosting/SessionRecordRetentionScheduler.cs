using ControlPlane.Sessions;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Hosting;

/// <summary>Makes sure the session record retention reminder matches configuration once the silo is up.</summary>
internal sealed class SessionRecordRetentionScheduler(
    IGrainFactory grains,
    IHostApplicationLifetime lifetime,
    IOptions<ControlPlaneOptions> options,
    ILogger<SessionRecordRetentionScheduler> logger) : ReminderRegistration(lifetime, logger)
{
    protected override string What => "session record retention";

    protected override Task RegisterAsync()
    {
        var sessions = options.Value.Sessions;
        return grains.GetGrain<ISessionRecordRetentionGrain>(ISessionRecordRetentionGrain.Singleton)
            .EnsureScheduledAsync(sessions.RecordSweepInterval, sessions.RecordRetention);
    }
}
