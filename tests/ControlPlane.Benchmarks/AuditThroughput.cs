using System.Diagnostics;
using System.Globalization;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using ControlPlane.Audit.Writing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Appends a fixed number of records in group-commit sized batches to each audit store and prints records/s.
/// PostgreSQL runs in a throwaway database on the server named by CONTROLPLANE_TEST_POSTGRES (see ops/postgres-dev.sh).
/// </summary>
internal static class AuditThroughput
{
    private const string DefaultPostgres = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres";

    private const int WriterCallers = 2_000;

    private static readonly TimeSpan WarmUpTime = TimeSpan.FromSeconds(3);

    public static async Task<(double Sqlite, double Postgres)> RunAsync(Action<string> print, string root, int records, int batchSize)
    {
        print($"## Audit store appends ({records:N0} records in batches of {batchSize}, one appender, 10 tenants per batch)");
        print("");
        // Client CPU is this process only (hashing, binding, the driver); the database server's share is not in it.
        print("| store | records/s | batch p50 ms | batch max ms | client CPU µs/record |");
        print("|---|---|---|---|---|");

        var sqliteStore = new SqliteAuditStore(Path.Combine(root, "audit", "audit.db"));
        var (sqliteRow, sqlite) = await MeasureAsync("SQLite (WAL, synchronous=FULL)", sqliteStore, records, batchSize);
        print(sqliteRow);
        var commits = new List<string> { await CommitLatencyAsync("SQLite (WAL, synchronous=FULL)", sqliteStore, 400) };
        // Without the fsync, what is left is the store's own work per commit (statements, binding, the chain hash).
        var unsynced = new SqliteAuditStore(Path.Combine(root, "audit-normal", "audit.db"), SqliteSynchronous.Normal);
        await unsynced.MigrateAsync(CancellationToken.None);
        commits.Add(await CommitLatencyAsync("SQLite (WAL, synchronous=NORMAL)", unsynced, 2_000));
        var writerRows = new List<string> { await MeasureWriterAsync("SQLite (WAL, synchronous=FULL)", sqliteStore, records) };
        double postgres;

        var admin = Environment.GetEnvironmentVariable("CONTROLPLANE_TEST_POSTGRES") is { Length: > 0 } configured ? configured : DefaultPostgres;
        var name = "cp_bench_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }

        try
        {
            await using var store = new PostgresAuditStore(new NpgsqlConnectionStringBuilder(admin) { Database = name }.ToString());
            (var row, postgres) = await MeasureAsync("PostgreSQL (synchronous_commit=on)", store, records, batchSize);
            print(row);
            commits.Add(await CommitLatencyAsync("PostgreSQL (synchronous_commit=on)", store, 400));
            writerRows.Add(await MeasureWriterAsync("PostgreSQL (synchronous_commit=on)", store, records));
        }
        finally
        {
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }

        print("");
        // What one call waits for when it is alone: its record is the whole batch, so this is the durable audit's floor.
        print("One record per commit, one after another (what a lone call's audit costs)");
        print("");
        print("| store | n | p50 ms | p90 ms | p99 ms | max ms | client CPU µs/commit | allocated B/commit |");
        print("|---|---|---|---|---|---|---|---|");
        foreach (var row in commits) print(row);
        print("");
        // The production path: every caller awaits its own record's durability through the group-committing writer.
        print($"Through the AuditWriter: {WriterCallers:N0} concurrent callers, each awaiting its record before appending the next");
        print("");
        print("| store | records/s | mean batch | commit lag p50 ms | commit lag p99 ms | client CPU µs/record |");
        print("|---|---|---|---|---|---|");
        foreach (var row in writerRows) print(row);
        print("");
        return (sqlite, postgres);
    }

    private static async Task<string> CommitLatencyAsync(string label, IAuditStore store, int n)
    {
        var start = DateTimeOffset.UtcNow;
        for (var i = 0; i < 50; i++) await store.AppendAsync([Entry(start, i)], CancellationToken.None);
        var latencies = new double[n];
        var entries = Enumerable.Range(0, n).Select(i => Entry(start, 1_000_000 + i)).ToArray();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var allocatedAll = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < n; i++)
        {
            var t = Stopwatch.GetTimestamp();
            await store.AppendAsync([entries[i]], CancellationToken.None);
            latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }

        var cpuPerCommit = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / n;
        var allocatedPerCommit = (GC.GetTotalAllocatedBytes(precise: true) - allocatedAll) / (double)n;
        Array.Sort(latencies);
        return string.Create(CultureInfo.InvariantCulture,
            $"| {label} | {n} | {latencies[n / 2]:0.000} | {latencies[(int)(n * 0.9)]:0.000} | {latencies[(int)(n * 0.99)]:0.000} | {latencies[^1]:0.000} | {cpuPerCommit:0} | {allocatedPerCommit:0} |");
    }

    private static async Task<string> MeasureWriterAsync(string label, IAuditStore store, int records)
    {
        var writer = new AuditWriter(store, Options.Create(new AuditOptions()), NullLogger<AuditWriter>.Instance);
        var lags = new List<double>();
        var batches = 0L;
        var batched = 0L;
        var measuring = false;
        writer.BatchCommitted += (lag, size) =>
        {
            if (!Volatile.Read(ref measuring)) return;
            lock (lags) lags.Add(lag.TotalMilliseconds);
            Interlocked.Increment(ref batches);
            Interlocked.Add(ref batched, size);
        };
        await writer.StartAsync(CancellationToken.None);
        try
        {
            var start = DateTimeOffset.UtcNow;
            var next = 2_000_000;
            async Task CallersAsync(int count)
            {
                var left = count;
                await Task.WhenAll(Enumerable.Range(0, WriterCallers).Select(_ => Task.Run(async () =>
                {
                    while (Interlocked.Decrement(ref left) >= 0) await writer.AppendAsync(Entry(start, Interlocked.Increment(ref next)));
                })));
            }

            var warmUp = Stopwatch.StartNew();
            while (warmUp.Elapsed < WarmUpTime) await CallersAsync(10_000);

            Volatile.Write(ref measuring, true);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var started = Stopwatch.GetTimestamp();
            await CallersAsync(records);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var cpuPerRecord = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / records;
            Volatile.Write(ref measuring, false);
            lags.Sort();
            return string.Create(CultureInfo.InvariantCulture,
                $"| {label} | {records / seconds:0} | {(double)batched / batches:0} | {lags[lags.Count / 2]:0.0} | {lags[(int)(lags.Count * 0.99)]:0.0} | {cpuPerRecord:0.0} |");
        }
        finally
        {
            await writer.StopAsync(CancellationToken.None);
            writer.Dispose();
        }
    }

    private static async Task<(string Row, double Rate)> MeasureAsync(string label, IAuditStore store, int records, int batchSize)
    {
        await store.MigrateAsync(CancellationToken.None);
        var start = DateTimeOffset.UtcNow;
        var next = 0;
        List<AuditEntry> Batch() => Enumerable.Range(0, batchSize).Select(_ => Entry(start, next++)).ToList();

        // Warm up (connection pool, statement caches, JIT tiering) so the figure is the steady state a running silo
        // sees. A method moves to optimised code after 30 calls and a quiet 100 ms, so per-batch code needs well over
        // 30 batches and some time: with only 20 batches the PostgreSQL figure measured unoptimised Npgsql code
        // (about twice the client CPU per record).
        var warmUp = Stopwatch.StartNew();
        for (var i = 0; i < 60 || warmUp.Elapsed < WarmUpTime; i++) await store.AppendAsync(Batch(), CancellationToken.None);

        var latencies = new List<double>();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var started = Stopwatch.GetTimestamp();
        for (var appended = 0; appended < records; appended += batchSize)
        {
            var batch = Batch();
            var t = Stopwatch.GetTimestamp();
            await store.AppendAsync(batch, CancellationToken.None);
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var cpuPerRecord = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / records;
        latencies.Sort();
        var verify = await store.VerifyAsync("bench-tenant-0", CancellationToken.None);
        if (!verify.Ok) throw new InvalidOperationException($"{label}: the chain does not verify after the run: {verify.Problem}");
        return (string.Create(CultureInfo.InvariantCulture,
            $"| {label} | {records / seconds:0} | {latencies[latencies.Count / 2]:0.0} | {latencies[^1]:0.0} | {cpuPerRecord:0.0} |"), records / seconds);
    }

    // A typical allowed call: redacted arguments, an HMAC, a result hash and size.
    private static AuditEntry Entry(DateTimeOffset start, int i) => new()
    {
        Id = $"bench-{i}-{Guid.NewGuid():N}",
        Timestamp = start.AddTicks(i * 10L),
        TenantId = "bench-tenant-" + (i % 10).ToString(CultureInfo.InvariantCulture),
        AgentId = "support-agent",
        UserId = "user-" + (i % 100).ToString(CultureInfo.InvariantCulture),
        SessionId = "session-" + (i % 1000).ToString(CultureInfo.InvariantCulture),
        TokenId = "tok_bench",
        Kind = "tools/call",
        Server = "support-desk",
        Tool = "lookup_customer_by_email",
        Arguments = """{"email":"[redacted:email]","include_orders":true,"limit":20}""",
        ArgumentsHash = "9f2c4e0d5b1a7c3e8f6d2b4a0c9e7f5d3b1a8c6e4f2d0b9a7c5e3f1d8b6a4c2e",
        Decision = "allowed",
        Outcome = "success",
        ResultHash = "3b1a8c6e4f2d0b9a7c5e3f1d8b6a4c2e9f2c4e0d5b1a7c3e8f6d2b4a0c9e7f5d",
        ResultSize = 1834,
        LatencyMs = 4.25,
        Silo = "silo-1",
    };
}
