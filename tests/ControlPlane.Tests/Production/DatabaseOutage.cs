using Npgsql;

namespace ControlPlane.Tests.Production;

/// <summary>
/// PostgreSQL made unavailable to this test's database only: new connections refused and every open one cut. The
/// server itself keeps running, so tests running beside this one on the same server are not disturbed (stopping
/// the whole server with pg_ctlcluster would fail them too, and needs root). To the silos it looks exactly like
/// an outage: every pooled connection breaks and every new one is refused.
/// </summary>
internal sealed class DatabaseOutage : IAsyncDisposable
{
    private readonly string _adminConnectionString;
    private readonly string _database;
    private bool _ended;

    private DatabaseOutage(string adminConnectionString, string database)
    {
        _adminConnectionString = adminConnectionString;
        _database = database;
    }

    public static async Task<DatabaseOutage> BeginAsync(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var database = builder.Database!;
        builder.Database = "postgres";
        builder.Pooling = false;
        var outage = new DatabaseOutage(builder.ToString(), database);
        await outage.ExecuteAsync($"ALTER DATABASE {database} ALLOW_CONNECTIONS false");

        // pg_terminate_backend only signals: a backend can still run a statement it was given before it exits, and a
        // write that lands after the outage "began" makes the test's "nothing changed" untrue. The outage begins when
        // no backend of the database is left.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        do
        {
            await outage.ExecuteAsync($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()");
        }
        while (await outage.CountBackendsAsync() > 0 && DateTime.UtcNow < deadline);

        return outage;
    }

    public async Task EndAsync()
    {
        if (_ended) return;
        await ExecuteAsync($"ALTER DATABASE {_database} ALLOW_CONNECTIONS true");
        // This process's own pooled connections to the database were cut too, but an idle pooled connection only
        // learns that at its first command; the test's next query would fail with 57P01 long after the outage.
        NpgsqlConnection.ClearAllPools();
        _ended = true;
    }

    private async Task<long> CountBackendsAsync()
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = @database AND pid <> pg_backend_pid()", connection);
        command.Parameters.AddWithValue("database", _database);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // The database name is the fixture's own (hex digits only); ALTER DATABASE takes no parameters.
    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_adminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync() => await EndAsync();
}
