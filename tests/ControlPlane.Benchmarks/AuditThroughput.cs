using System.Diagnostics;
using System.Globalization;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using Npgsql;

namespace ControlPlane.Benchmarks;

/// <summary>
/// Appends a fixed number of records in group-commit sized batches to each audit store and prints records/s.
/// PostgreSQL runs in a throwaway database on the server named by CONTROLPLANE_TEST_POSTGRES (see ops/postgres-dev.sh).
/// </summary>
internal static class AuditThroughput
{
    private const string DefaultPostgres = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres";

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
        print("| store | n | p50 ms | p90 ms | p99 ms | max ms |");
        print("|---|---|---|---|---|---|");
        foreach (var row in commits) print(row);
        print("");
        return (sqlite, postgres);
    }

    private static async Task<string> CommitLatencyAsync(string label, IAuditStore store, int n)
    {
        var start = DateTimeOffset.UtcNow;
        for (var i = 0; i < 50; i++) await store.AppendAsync([Entry(start, i)], CancellationToken.None);
        var latencies = new double[n];
        for (var i = 0; i < n; i++)
        {
            var entry = Entry(start, 1_000_000 + i);
            var t = Stopwatch.GetTimestamp();
            await store.AppendAsync([entry], CancellationToken.None);
            latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }

        Array.Sort(latencies);
        return string.Create(CultureInfo.InvariantCulture,
            $"| {label} | {n} | {latencies[n / 2]:0.000} | {latencies[(int)(n * 0.9)]:0.000} | {latencies[(int)(n * 0.99)]:0.000} | {latencies[^1]:0.000} |");
    }

    private static async Task<(string Row, double Rate)> MeasureAsync(string label, IAuditStore store, int records, int batchSize)
    {
        await store.MigrateAsync(CancellationToken.None);
        var start = DateTimeOffset.UtcNow;
        var next = 0;
        List<AuditEntry> Batch() => Enumerable.Range(0, batchSize).Select(_ => Entry(start, next++)).ToList();

        // Warm up (JIT tiering, connection pool, statement caches) so the figure is the steady state.
        for (var i = 0; i < 20; i++) await store.AppendAsync(Batch(), CancellationToken.None);

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
