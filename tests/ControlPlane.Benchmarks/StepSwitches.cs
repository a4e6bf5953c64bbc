using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Benchmark-only: which guard steps a bench host skips. The host's pipeline is built from the same steps in
/// the same order as production, each behind a <see cref="SwitchableStep"/>; production configuration has no
/// such switch. Flipping a name here takes effect on the next call, so one host serves every "step off" run.
/// </summary>
internal sealed class StepSwitches
{
    /// <summary>Every step, by <see cref="IGuardStep.Name"/>, in the pipeline's order.</summary>
    public static readonly string[] StepNames = ["kill", "authentication", "scope", "mode", "schema", "rate-limit", "confirmation"];

    private volatile string[] _off = [];

    /// <summary>The steps skipped now, by <see cref="IGuardStep.Name"/>; empty for the full guard.</summary>
    public string[] Off
    {
        get => _off;
        set => _off = value;
    }

    /// <summary>Registers the switchable pipeline ahead of the production registration, which then yields to it.</summary>
    public void Register(IServiceCollection services) =>
        services.AddSingleton(sp => GuardPipeline.Create(sp, Wrap));

    private IGuardStep Wrap(IGuardStep step) => new SwitchableStep(step, this);

    private sealed class SwitchableStep(IGuardStep inner, StepSwitches switches) : IGuardStep
    {
        public string Name => inner.Name;

        public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken) =>
            switches.Off is { Length: > 0 } off && Array.IndexOf(off, inner.Name) >= 0
                ? ValueTask.FromResult<Refusal?>(null)
                : inner.CheckAsync(call, cancellationToken);
    }
}

/// <summary>
/// Benchmark-only audit store that accepts appends without writing them (no transaction, no fsync), so a run
/// shows what durable audit costs per call. Everything else goes to a real SQLite store.
/// </summary>
internal sealed class DiscardingAuditStore(IAuditStore inner) : IAuditStore
{
    private long _sequence;

    public Task MigrateAsync(CancellationToken cancellationToken) => inner.MigrateAsync(cancellationToken);

    public Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        var records = new AuditRecord[entries.Count];
        for (var i = 0; i < records.Length; i++) records[i] = new AuditRecord(entries[i], Interlocked.Increment(ref _sequence), "", "");
        return Task.FromResult<IReadOnlyList<AuditRecord>>(records);
    }

    public Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken) => inner.QueryAsync(query, cancellationToken);

    public IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, CancellationToken cancellationToken) => inner.ExportAsync(query, cancellationToken);

    public Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken) => inner.VerifyAsync(tenantId, cancellationToken);

    public Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken) => inner.PurgeAsync(tenantId, before, cancellationToken);

    public Task<bool> PingAsync(CancellationToken cancellationToken) => inner.PingAsync(cancellationToken);
}
