using System.Threading.Channels;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Audit.Writing;

/// <summary>The audit record could not be made durable; nothing that depends on it may proceed.</summary>
public sealed class AuditUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Group commit for audit records. Callers await their record's durability; records that arrive while a
/// transaction is being written go into the next one, so auditing never serialises calls and costs each
/// call about one commit, however many calls are in flight.
/// </summary>
public sealed partial class AuditWriter : BackgroundService
{
    /// <summary>How long an owed record is retried, every <see cref="OwedRecordRetryDelay"/>, after the store refused it.</summary>
    private const int OwedRecordAttempts = 90;
    private static readonly TimeSpan OwedRecordRetryDelay = TimeSpan.FromSeconds(2);

    private readonly IAuditStore _store;
    private readonly ILogger<AuditWriter> _logger;
    private readonly TimeProvider _time;
    private readonly int _maxBatch;
    private readonly Channel<Pending> _queue;
    private long _written;
    private long _failedBatches;
    private volatile bool _healthy = true;
    // 1 once the background loop or StopAsync has taken the queue's single reader (see StopAsync).
    private int _readerTaken;

    public AuditWriter(IAuditStore store, IOptions<AuditOptions> options, ILogger<AuditWriter> logger, TimeProvider? time = null)
    {
        _store = store;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        _maxBatch = Math.Max(1, options.Value.MaxBatch);
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(Math.Max(1, options.Value.QueueCapacity))
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
            // An idle writer resumes on the thread of the call that woke it (see ExecuteAsync).
            AllowSynchronousContinuations = true,
        });
    }

    /// <summary>False after a failed write, until a write succeeds again.</summary>
    public bool IsHealthy => _healthy;

    public long Written => Interlocked.Read(ref _written);

    public long FailedBatches => Interlocked.Read(ref _failedBatches);

    public int Queued => _queue.Reader.Count;

    /// <summary>
    /// Raised after each batch is made durable, with how long its oldest record waited from enqueue to commit (the
    /// audit's lag: what every call adds to its latency) and the batch size. For metrics; keep handlers cheap.
    /// </summary>
    public event Action<TimeSpan, int>? BatchCommitted;

    /// <summary>Completes when the record is durable; throws <see cref="AuditUnavailableException"/> when it is not.</summary>
    public Task<AuditRecord> AppendAsync(AuditEntry entry, CancellationToken cancellationToken = default)
    {
        var pending = new Pending(entry with { Timestamp = AuditChain.Normalize(entry.Timestamp) });
        bool written;
        t_appending = true;
        try
        {
            written = _queue.Writer.TryWrite(pending);
        }
        finally
        {
            t_appending = false;
        }

        if (!written)
        {
            return Task.FromException<AuditRecord>(new AuditUnavailableException("The audit queue is full: the store is not keeping up."));
        }

        // The caller may stop waiting, but the record still gets written: it describes something that happened.
        return cancellationToken.CanBeCanceled ? pending.Completion.Task.WaitAsync(cancellationToken) : pending.Completion.Task;
    }

    /// <summary>
    /// The record of something that already happened (an action ran, a kill switch was set) must not be dropped
    /// because the store blinked: call this after <see cref="AppendAsync"/> failed, and the record is retried in
    /// the background until the store takes records again (about three minutes), then logged as lost.
    /// </summary>
    public void AppendWhenPossible(AuditEntry entry) => _ = AppendWhenPossibleAsync(entry);

    private async Task AppendWhenPossibleAsync(AuditEntry entry)
    {
        LogRecordOwed(_logger, entry.Id, entry.Kind);
        for (var attempt = 1; attempt <= OwedRecordAttempts; attempt++)
        {
            await Task.Delay(OwedRecordRetryDelay, _time);
            try
            {
                await AppendAsync(entry);
                LogOwedRecordWritten(_logger, entry.Id, attempt);
                return;
            }
            catch (AuditUnavailableException)
            {
            }
        }

        LogOwedRecordLost(_logger, entry.Id, entry.Kind);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Interlocked.Exchange(ref _readerTaken, 1) != 0) return;
        var batch = new List<Pending>(_maxBatch);
        var reader = _queue.Reader;
        try
        {
            // Every await here leaves the caller's context behind (ConfigureAwait(false)): this loop may be resumed on
            // a caller's thread, a grain's turn among them, and must not stay on that grain's scheduler.
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                // An idle writer is woken inside the AppendAsync that queued a record, on that caller's thread: the
                // batch (the caller's own record first) is committed right there, so a lone call's record costs no
                // hop to another thread and back, and under load the writer does not wait behind the requests in
                // the thread pool's queue. The borrowed thread does one batch; more records go on from the pool.
                while (batch.Count < _maxBatch && reader.TryRead(out var next)) batch.Add(next);
                await WriteAsync(batch, CancellationToken.None).ConfigureAwait(false);
                batch.Clear();
                if (t_appending && reader.Count > 0) await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await WriteQueuedAsync(batch);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);

        // On .NET 10 a BackgroundService queues ExecuteAsync with its stopping token, so one stopped right after it
        // started may never run it; base.StopAsync has then returned at once. Write the queue here instead, or its
        // callers would wait forever and a quick stop would lose records. Whoever takes the reader first drains.
        if (Interlocked.Exchange(ref _readerTaken, 1) == 0) await WriteQueuedAsync(new List<Pending>(_maxBatch));
    }

    // Shutting down: write what is already queued, so a graceful stop loses nothing.
    private async Task WriteQueuedAsync(List<Pending> batch)
    {
        var reader = _queue.Reader;
        while (reader.TryRead(out var rest))
        {
            batch.Add(rest);
            if (batch.Count == _maxBatch)
            {
                await WriteAsync(batch, CancellationToken.None);
                batch.Clear();
            }
        }

        if (batch.Count > 0) await WriteAsync(batch, CancellationToken.None);
    }

    private async Task WriteAsync(List<Pending> batch, CancellationToken cancellationToken)
    {
        try
        {
            var records = await _store.AppendAsync([.. batch.Select(p => p.Entry)], cancellationToken).ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++) batch[i].Completion.TrySetResult(records[i]);
            Interlocked.Add(ref _written, batch.Count);
            BatchCommitted?.Invoke(System.Diagnostics.Stopwatch.GetElapsedTime(batch[0].EnqueuedAt), batch.Count);
            if (!_healthy) LogRecovered(_logger);
            _healthy = true;
        }
        catch (Exception ex)
        {
            _healthy = false;
            Interlocked.Increment(ref _failedBatches);
            LogWriteFailed(_logger, ex, batch.Count);
            var failure = new AuditUnavailableException("The audit store did not accept the record.", ex);
            foreach (var pending in batch) pending.Completion.TrySetException(failure);
        }
    }

    // True on a thread while it queues a record, so the writer can tell when it is running on that caller's thread.
    [ThreadStatic]
    private static bool t_appending;

    private sealed class Pending(AuditEntry entry)
    {
        public AuditEntry Entry { get; } = entry;
        public long EnqueuedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();
        public TaskCompletionSource<AuditRecord> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Count} audit records failed; their calls are refused or reported as unaudited.")]
    private static partial void LogWriteFailed(ILogger logger, Exception ex, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit record {RecordId} ({Kind}) could not be written; it is retried until the audit store accepts it.")]
    private static partial void LogRecordOwed(ILogger logger, string recordId, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "The owed audit record {RecordId} was written (attempt {Attempt}).")]
    private static partial void LogOwedRecordWritten(ILogger logger, string recordId, int attempt);

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit record {RecordId} ({Kind}) could not be written after retrying; it is lost.")]
    private static partial void LogOwedRecordLost(ILogger logger, string recordId, string kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "The audit store accepts records again.")]
    private static partial void LogRecovered(ILogger logger);
}
