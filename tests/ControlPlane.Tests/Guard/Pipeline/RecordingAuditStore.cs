using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>
/// An audit store in memory whose failures the test decides: <see cref="Refuses"/> makes a batch fail (the writer then
/// throws AuditUnavailableException to its callers), <see cref="Hold"/> keeps a batch from committing until released.
/// Tests await what reached it or became durable instead of sleeping.
/// </summary>
internal sealed class RecordingAuditStore : IAuditStore
{
    private readonly Lock _lock = new();
    private readonly List<AuditEntry> _attempted = [];
    private readonly List<AuditEntry> _durable = [];
    private readonly List<(bool Durable, Func<AuditEntry, bool> Match, TaskCompletionSource<AuditEntry> Seen)> _waiters = [];
    private volatile Func<AuditEntry, bool> _refuses = static _ => false;

    /// <summary>Entries for which a batch fails instead of committing.</summary>
    public Func<AuditEntry, bool> Refuses
    {
        get => _refuses;
        set => _refuses = value;
    }

    /// <summary>Every append fails while true.</summary>
    public bool Down
    {
        set => Refuses = value ? static _ => true : static _ => false;
    }

    /// <summary>When set, awaited for each entry before its batch commits (or fails).</summary>
    public Func<AuditEntry, Task>? Hold { get; set; }

    /// <summary>Every entry handed to the store, durable or not.</summary>
    public IReadOnlyList<AuditEntry> Attempted
    {
        get
        {
            lock (_lock) return [.. _attempted];
        }
    }

    public IReadOnlyList<AuditEntry> Durable
    {
        get
        {
            lock (_lock) return [.. _durable];
        }
    }

    /// <summary>Completes with the first entry that matches once it reached the store (committed or not).</summary>
    public Task<AuditEntry> ReachedAsync(Func<AuditEntry, bool> match) => Wait(durable: false, match);

    /// <summary>Completes with the first entry that matches once it is durable.</summary>
    public Task<AuditEntry> DurableAsync(Func<AuditEntry, bool> match) => Wait(durable: true, match);

    public async Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        Add(durable: false, entries);
        if (Hold is { } hold)
        {
            foreach (var entry in entries) await hold(entry);
        }

        var refuses = Refuses;
        if (entries.Any(refuses)) throw new IOException("audit store unreachable (test)");

        var records = entries.Select((e, i) => new AuditRecord(e, i + 1, "", "")).ToList();
        Add(durable: true, entries);
        return records;
    }

    private Task<AuditEntry> Wait(bool durable, Func<AuditEntry, bool> match)
    {
        var seen = new TaskCompletionSource<AuditEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if ((durable ? _durable : _attempted).FirstOrDefault(match) is { } already) return Task.FromResult(already);
            _waiters.Add((durable, match, seen));
        }

        return seen.Task;
    }

    private void Add(bool durable, IReadOnlyList<AuditEntry> entries)
    {
        var ready = new List<(TaskCompletionSource<AuditEntry>, AuditEntry)>();
        lock (_lock)
        {
            (durable ? _durable : _attempted).AddRange(entries);
            foreach (var waiter in _waiters.Where(w => w.Durable == durable).ToList())
            {
                if (entries.FirstOrDefault(waiter.Match) is not { } entry) continue;
                _waiters.Remove(waiter);
                ready.Add((waiter.Seen, entry));
            }
        }

        foreach (var (seen, entry) in ready) seen.TrySetResult(entry);
    }

    public Task MigrateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken) => throw new NotSupportedException();

    public IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task<bool> PingAsync(CancellationToken cancellationToken) => Task.FromResult(true);
}
