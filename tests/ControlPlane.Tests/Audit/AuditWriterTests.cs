using System.Collections.Concurrent;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Audit.Writing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ControlPlane.Tests.Audit;

/// <summary>
/// The group-committing writer on real PostgreSQL: every caller's record is durable when its append completes,
/// chains stay contiguous and verifiable, a failed batch fails exactly its own callers, and a graceful stop
/// writes what is queued.
/// </summary>
public sealed class AuditWriterTests(PostgresAuditServer server) : IClassFixture<PostgresAuditServer>, IAsyncLifetime
{
    private static readonly DateTimeOffset Base = new(2025, 6, 1, 8, 0, 0, TimeSpan.Zero);

    private readonly string _run = Guid.NewGuid().ToString("N")[..10];
    private PostgresAuditStore _store = null!;

    public Task InitializeAsync()
    {
        _store = (PostgresAuditStore)server.Database.CreateStore();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task Concurrent_callers_each_get_their_durable_record_and_every_chain_verifies()
    {
        string[] tenants = [Tenant("a"), Tenant("b"), Tenant("c")];
        const int Callers = 300, PerCaller = 10;

        var writer = await StartWriterAsync(_store, maxBatch: 50);
        List<AuditRecord>[] perCaller;
        try
        {
            // Each caller appends its records one after another, awaiting each, as a guarded call does.
            perCaller = await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
            {
                var mine = new List<AuditRecord>();
                for (var i = 0; i < PerCaller; i++)
                {
                    mine.Add(await writer.AppendAsync(Entry(tenants[caller % tenants.Length], $"caller{caller}"), Timeout()));
                }

                return mine;
            })));
        }
        finally
        {
            await StopAsync(writer);
        }

        var appended = perCaller.SelectMany(r => r).ToList();
        Assert.Equal(Callers * PerCaller, appended.Count);
        Assert.Equal(Callers * PerCaller, writer.Written);
        Assert.Equal(0, writer.FailedBatches);

        foreach (var tenant in tenants)
        {
            var returned = appended.Where(r => r.Entry.TenantId == tenant).OrderBy(r => r.Sequence).ToList();
            Assert.Equal(Enumerable.Range(1, returned.Count).Select(i => (long)i), returned.Select(r => r.Sequence));
            var stored = await ExportAsync(tenant);
            Assert.Equal(returned, stored);
            Assert.Equal(new ChainVerification(true, returned.Count, null, null), await _store.VerifyAsync(tenant, Timeout()));
        }

        // A record appended after another was acknowledged comes after it in the chain.
        foreach (var mine in perCaller)
        {
            Assert.Equal(mine.Select(r => r.Sequence).Order(), mine.Select(r => r.Sequence));
        }
    }

    [Fact]
    public async Task A_failed_batch_fails_exactly_its_callers_and_the_batches_around_it_commit()
    {
        var tenant = Tenant("fail");
        var taken = Entry(tenant, "first");
        await _store.AppendAsync([taken], Timeout());

        var writer = await StartWriterAsync(_store, maxBatch: 10);
        var entries = Enumerable.Range(0, 300).Select(i => Entry(tenant, $"n{i}")).ToList();
        // An id already stored: PostgreSQL rejects the whole batch that carries it.
        entries[137] = entries[137] with { Id = taken.Id };

        Task<AuditRecord>[] appends;
        try
        {
            // Enqueued at once: the writer cuts them into batches of at most 10 while earlier ones commit.
            appends = entries.Select(e => writer.AppendAsync(e, Timeout())).ToArray();
            await Task.WhenAll(appends.Select(a => a.ContinueWith(_ => { }, TaskScheduler.Default)));
        }
        finally
        {
            await StopAsync(writer);
        }

        var failed = Enumerable.Range(0, entries.Count).Where(i => appends[i].IsFaulted).ToList();
        Assert.Contains(137, failed);
        Assert.All(failed, i => Assert.IsType<AuditUnavailableException>(appends[i].Exception!.InnerException));
        // Exactly one batch failed: the records queued around the duplicate, at most one batch's worth.
        Assert.Equal(1, writer.FailedBatches);
        Assert.InRange(failed.Count, 1, 10);
        Assert.Equal(Enumerable.Range(failed[0], failed.Count), failed);

        var stored = (await ExportAsync(tenant)).ToDictionary(r => r.Entry.Id);
        Assert.Equal(1 + entries.Count - failed.Count, stored.Count);
        for (var i = 0; i < entries.Count; i++)
        {
            if (failed.Contains(i))
            {
                Assert.True(i == 137 || !stored.ContainsKey(entries[i].Id), $"record {i} of the failed batch was stored");
            }
            else
            {
                Assert.Equal(stored[entries[i].Id], await appends[i]);
            }
        }

        Assert.Equal(new ChainVerification(true, stored.Count, null, null), await _store.VerifyAsync(tenant, Timeout()));
        Assert.True(writer.IsHealthy, "a later batch succeeded, so the writer reports healthy again");
    }

    // Stopped right after it started, the writer's background loop may never run (.NET 10 queues it with the
    // stopping token); stopped after a while, it is mid-run. Either way every queued record is written.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_graceful_stop_writes_every_record_already_queued(bool runFirst)
    {
        var tenant = Tenant(runFirst ? "stop-running" : "stop-at-once");
        var writer = new AuditWriter(_store, Options.Create(new AuditOptions { MaxBatch = 25 }), NullLogger<AuditWriter>.Instance);
        var appends = Enumerable.Range(0, 1_000).Select(i => writer.AppendAsync(Entry(tenant, $"q{i}"))).ToArray();
        await writer.StartAsync(Timeout());
        if (runFirst) await Task.WhenAny(appends[0], Task.Delay(TimeSpan.FromSeconds(30)));

        await StopAsync(writer);

        Assert.All(appends, a => Assert.True(a.IsCompletedSuccessfully, "every queued append completes with its record"));
        var stored = await ExportAsync(tenant);
        Assert.Equal(appends.Select(a => a.Result.Entry.Id).Order(), stored.Select(r => r.Entry.Id).Order());
        Assert.Equal(new ChainVerification(true, 1_000, null, null), await _store.VerifyAsync(tenant, Timeout()));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task A_record_appended_from_a_grain_turn_does_not_tie_the_writer_to_that_grain(string storeKind)
    {
        // An idle writer wakes on the thread of the call that queued a record. Grains append records from their
        // turns, on their own task scheduler; if the writer stayed on that scheduler, it would stop the moment the
        // grain deactivated, and every later call would wait for an audit record that is never written.
        var directory = Path.Combine(Path.GetTempPath(), "cp-writer-" + _run);
        var sqlite = storeKind == "sqlite" ? new SqliteAuditStore(Path.Combine(directory, "audit.db")) : null;
        IAuditStore store = sqlite is not null ? sqlite : _store;
        if (sqlite is not null) await sqlite.MigrateAsync(Timeout());
        var tenant = Tenant("turn-" + storeKind);
        var writer = await StartWriterAsync(store, 25);
        try
        {
            using (var grainTurns = new StoppableScheduler())
            {
                var fromTurn = Task.Factory.StartNew(() => writer.AppendAsync(Entry(tenant, "grain")), CancellationToken.None, TaskCreationOptions.None, grainTurns).Unwrap();
                Assert.Equal(1, (await fromTurn.WaitAsync(TimeSpan.FromSeconds(60))).Sequence);
            }

            // The "grain" is gone: nothing runs on its scheduler any more. Several batches from the pool must still commit.
            var later = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => writer.AppendAsync(Entry(tenant, $"pool{i}"))))).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(Enumerable.Range(2, 200).Select(i => (long)i), later.Select(r => r.Sequence).Order());
            Assert.Equal(new ChainVerification(true, 201, null, null), await store.VerifyAsync(tenant, Timeout()));
        }
        finally
        {
            await StopAsync(writer);
            sqlite?.Dispose();
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Runs tasks on one thread until disposed; after that, what is queued to it never runs (a deactivated grain).</summary>
    private sealed class StoppableScheduler : TaskScheduler, IDisposable
    {
        private readonly BlockingCollection<Task> _queue = [];

        public StoppableScheduler() => new Thread(() =>
        {
            foreach (var task in _queue.GetConsumingEnumerable()) TryExecuteTask(task);
        }) { IsBackground = true }.Start();

        public void Dispose() => _queue.CompleteAdding();

        protected override void QueueTask(Task task)
        {
            if (!_queue.IsAddingCompleted) _queue.TryAdd(task);
        }

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

        protected override IEnumerable<Task> GetScheduledTasks() => [.. _queue];
    }

    private static async Task<AuditWriter> StartWriterAsync(IAuditStore store, int maxBatch)
    {
        var writer = new AuditWriter(store, Options.Create(new AuditOptions { MaxBatch = maxBatch }), NullLogger<AuditWriter>.Instance);
        await writer.StartAsync(Timeout());
        return writer;
    }

    private static async Task StopAsync(AuditWriter writer)
    {
        await writer.StopAsync(Timeout());
        writer.Dispose();
    }

    private async Task<List<AuditRecord>> ExportAsync(string tenant)
    {
        var records = new List<AuditRecord>();
        await foreach (var record in _store.ExportAsync(new AuditQuery { TenantIds = [tenant] }, Timeout()))
        {
            records.Add(record);
        }

        return records.OrderBy(r => r.Sequence).ToList();
    }

    private string Tenant(string name) => $"w-{_run}-{name}";

    private static AuditEntry Entry(string tenant, string agent) => new()
    {
        Id = "call-" + Guid.NewGuid().ToString("N"),
        Timestamp = Base,
        TenantId = tenant,
        AgentId = agent,
        Kind = "tools/call",
        Server = "support-desk",
        Tool = "lookup_customer_by_email",
        Arguments = """{"email":"[redacted:email]"}""",
        Decision = "allowed",
        Outcome = "success",
        LatencyMs = 2.5,
    };

    // Generous: the machine running the tests is shared and slow.
    private static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(120)).Token;
}
