using ControlPlane.Audit.Writing;
using ControlPlane.Auditing;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Hosting;

/// <summary>Makes sure the audit retention reminder exists once the silo is up.</summary>
internal sealed class AuditRetentionScheduler(
    IGrainFactory grains,
    IHostApplicationLifetime lifetime,
    IOptions<AuditOptions> options,
    ILogger<AuditRetentionScheduler> logger) : ReminderRegistration(lifetime, logger)
{
    protected override string What => "audit retention";

    protected override Task RegisterAsync() =>
        grains.GetGrain<IAuditRetentionGrain>(IAuditRetentionGrain.Singleton).EnsureScheduledAsync(options.Value.RetentionRunInterval);
}
