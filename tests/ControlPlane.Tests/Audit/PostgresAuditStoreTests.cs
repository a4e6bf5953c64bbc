using ControlPlane.Audit.Storage;
using Npgsql;

namespace ControlPlane.Tests.Audit;

/// <summary>The audit store contract on PostgreSQL: one fresh database for the class, dropped afterwards.</summary>
public sealed class PostgresAuditStoreTests(PostgresAuditServer server) : AuditStoreContractTests, IClassFixture<PostgresAuditServer>
{
    protected override AuditTestDatabase Database => server.Database;

    protected override async Task<AuditTestDatabase> CreateEmptyDatabaseAsync() => await server.CreateDatabaseAsync();

    [Fact]
    public async Task Ping_is_false_when_the_server_cannot_be_reached()
    {
        // Port 1 on loopback: nothing listens, so the connection is refused at once.
        await using var store = new PostgresAuditStore("Host=127.0.0.1;Port=1;Username=nobody;Password=x;Database=nothing;Timeout=2");
        Assert.False(await store.PingAsync(CancellationToken.None));
    }
}

/// <summary>
/// The PostgreSQL server named by CONTROLPLANE_TEST_POSTGRES (an admin connection string), or a local default.
/// Creates a cp_test_* database for the test class, plus any extra empty ones a test asks for, and drops them all.
/// </summary>
public sealed class PostgresAuditServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "CONTROLPLANE_TEST_POSTGRES";

    private const string DefaultConnectionString = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=postgres";

    private readonly string _adminConnectionString =
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured ? configured : DefaultConnectionString;

    private readonly List<string> _databases = [];
    private PostgresTestDatabase? _database;

    public AuditTestDatabase Database => _database ?? throw new InvalidOperationException("The PostgreSQL fixture is not initialised.");

    public async Task InitializeAsync()
    {
        var database = await CreateDatabaseAsync();
        await using (var store = database.CreateStore() as PostgresAuditStore)
        {
            await store!.MigrateAsync(CancellationToken.None);
        }

        _database = database;
    }

    public async Task<PostgresTestDatabase> CreateDatabaseAsync()
    {
        var name = "cp_test_" + Guid.NewGuid().ToString("N")[..16];
        await using var admin = await OpenAdminAsync();
        // CREATE DATABASE takes no parameters; the name is generated here from hex digits only.
        await using (var command = new NpgsqlCommand($"CREATE DATABASE {name}", admin))
        {
            await command.ExecuteNonQueryAsync();
        }

        lock (_databases)
        {
            _databases.Add(name);
        }

        return new PostgresTestDatabase(new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = name }.ToString());
    }

    public async Task DisposeAsync()
    {
        if (_databases.Count == 0)
        {
            return;
        }

        await using var admin = await OpenAdminAsync();
        foreach (var name in _databases)
        {
            // FORCE (PostgreSQL 13+) ends connections still parked in some data source's pool.
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", admin);
            await command.ExecuteNonQueryAsync();
        }
    }

    private async Task<NpgsqlConnection> OpenAdminAsync()
    {
        var connection = new NpgsqlConnection(_adminConnectionString);
        try
        {
            await connection.OpenAsync();
            return connection;
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await connection.DisposeAsync();
            var target = new NpgsqlConnectionStringBuilder(_adminConnectionString);
            throw new InvalidOperationException(
                $"The PostgreSQL audit store tests cannot reach PostgreSQL at {target.Host}:{target.Port} as '{target.Username}' " +
                $"({ex.Message}). Start a local server with `bash ops/postgres-dev.sh` (as root; it prints the connection string), " +
                $"or set {EnvironmentVariable} to an admin connection string for a server you have.",
                ex);
        }
    }
}

public sealed class PostgresTestDatabase(string connectionString) : AuditTestDatabase
{
    public string ConnectionString => connectionString;

    public override IAuditStore CreateStore() => new PostgresAuditStore(connectionString);

    public override async Task<int> ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = Command(connection, sql, parameters);
        return await command.ExecuteNonQueryAsync();
    }

    public override async Task<List<object?[]>> QueryAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
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

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, (string Name, object Value)[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }
}
