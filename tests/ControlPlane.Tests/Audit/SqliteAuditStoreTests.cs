using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Tests.Audit;

/// <summary>The audit store contract on SQLite: a fresh file per test, in a directory the store has to create.</summary>
public sealed class SqliteAuditStoreTests : AuditStoreContractTests
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "controlplane-tests", "audit-" + Guid.NewGuid().ToString("N"));
    private readonly SqliteTestDatabase _database;

    public SqliteAuditStoreTests()
    {
        _database = new SqliteTestDatabase(Path.Combine(_root, "a", "audit.db"));
    }

    protected override AuditTestDatabase Database => _database;

    protected override Task<AuditTestDatabase> CreateEmptyDatabaseAsync() =>
        Task.FromResult<AuditTestDatabase>(new SqliteTestDatabase(Path.Combine(_root, Guid.NewGuid().ToString("N"), "audit.db")));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        // Pooled connections keep the files open; release them so the directory can be deleted on every OS.
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task The_store_creates_the_directory_and_uses_wal()
    {
        Assert.True(File.Exists(Path.Combine(_root, "a", "audit.db")));
        var mode = Assert.Single(await Database.QueryAsync("PRAGMA journal_mode"));
        Assert.Equal("wal", mode[0]);
    }

    [Fact]
    public async Task Under_continuous_appends_the_wal_stays_bounded()
    {
        // Each commit rewrites whole index pages into the WAL (about 1 MB per 100 records here), so a WAL that is never
        // checkpointed and restarted grows without bound. SQLite's own checkpoint, inside the commit that crosses
        // wal_autocheckpoint (4,000 pages for appends), keeps it bounded; a PASSIVE checkpoint beside the appends was tried and does not: with a
        // writer always active, the WAL never restarts (it reached 212 MB for these 20,000 records).
        for (var batch = 0; batch < 200; batch++) await Store.AppendAsync(Entries(Tenant("wal"), 100), Timeout());
        await Task.Delay(TimeSpan.FromSeconds(1));

        var database = new FileInfo(Path.Combine(_root, "a", "audit.db")).Length;
        var wal = new FileInfo(Path.Combine(_root, "a", "audit.db-wal")).Length;
        // Appends checkpoint at about 16 MB of WAL; 32 MB leaves room for the last transactions and is far below unbounded.
        Assert.True(wal < 32L << 20, $"20,000 records: WAL {wal:N0} bytes against a database of {database:N0}; checkpoints are not keeping up.");
        Assert.Equal(new ChainVerification(true, 20_000, null, null), await Store.VerifyAsync(Tenant("wal"), Timeout()));
    }

    [Fact]
    public async Task Ping_is_false_when_the_file_cannot_be_opened()
    {
        // A directory where the database file should be: opening it fails.
        var path = Path.Combine(_root, "not-a-file");
        Directory.CreateDirectory(path);
        Assert.False(await new SqliteAuditStore(path).PingAsync(CancellationToken.None));
    }

    private sealed class SqliteTestDatabase(string path) : AuditTestDatabase
    {
        public override IAuditStore CreateStore() => new SqliteAuditStore(path);

        public override async Task<int> ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
        {
            await using var connection = await OpenAsync();
            await using var command = Command(connection, sql, parameters);
            return await command.ExecuteNonQueryAsync();
        }

        public override async Task<List<object?[]>> QueryAsync(string sql, params (string Name, object Value)[] parameters)
        {
            await using var connection = await OpenAsync();
            await using var command = Command(connection, sql, parameters);
            await using var reader = await command.ExecuteReaderAsync();
            var rows = new List<object?[]>();
            while (await reader.ReadAsync())
            {
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                }

                rows.Add(row);
            }

            return rows;
        }

        private async Task<SqliteConnection> OpenAsync()
        {
            var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 30 }.ToString());
            await connection.OpenAsync();
            return connection;
        }

        private static SqliteCommand Command(SqliteConnection connection, string sql, (string Name, object Value)[] parameters)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }

            return command;
        }
    }
}
