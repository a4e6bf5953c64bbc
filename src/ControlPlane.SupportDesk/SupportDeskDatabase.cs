using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace ControlPlane.SupportDesk;

/// <summary>
/// The support desk's SQLite store: a wide, PII-heavy <c>customers</c> table plus <c>orders</c> and <c>refunds</c>.
/// Thread-safe; each operation opens its own (pooled) connection.
/// </summary>
public sealed class SupportDeskDatabase : IDisposable
{
    private const string RefundIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private readonly string _connectionString;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _initializeLock = new(1, 1);
    private volatile bool _initialized;

    public SupportDeskDatabase(string databasePath, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);

        DatabasePath = Path.GetFullPath(databasePath);
        _timeProvider = timeProvider ?? TimeProvider.System;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            ForeignKeys = true,
            Pooling = true,
        }.ToString();
    }

    public SupportDeskDatabase(SupportDeskOptions options, TimeProvider? timeProvider = null)
        : this((options ?? throw new ArgumentNullException(nameof(options))).DatabasePath, timeProvider)
    {
    }

    /// <summary>Absolute path of the SQLite file.</summary>
    public string DatabasePath { get; }

    /// <summary>
    /// Creates the schema if missing and seeds the deterministic demo data exactly once per database file.
    /// Safe to call repeatedly and concurrently; data operations call it implicitly.
    /// </summary>
    public async Task InitializeAsync(CancellationToken cancellationToken = default)
    {
        if (_initialized)
        {
            return;
        }

        await _initializeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_initialized)
            {
                await InitializeCoreAsync(cancellationToken).ConfigureAwait(false);
                _initialized = true;
            }
        }
        finally
        {
            _initializeLock.Release();
        }
    }

    /// <summary>Releases pooled connections so the database file is no longer held open.</summary>
    public void Dispose()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        _initializeLock.Dispose();
    }

    private async Task InitializeCoreAsync(CancellationToken cancellationToken)
    {
        if (Path.GetDirectoryName(DatabasePath) is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // WAL lets tool reads proceed while a refund is being written. The setting persists in the file.
        await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false);

        // BEGIN IMMEDIATE (the default for Microsoft.Data.Sqlite) takes the write lock up front, so two processes
        // initialising the same file serialise here and only the first one seeds.
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        await ExecuteAsync(connection, transaction, SupportDeskSchema.CreateMetaTable, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, SupportDeskSchema.CreateCustomersTable, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, SupportDeskSchema.CreateOrdersTable, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, transaction, SupportDeskSchema.CreateRefundsTable, cancellationToken).ConfigureAwait(false);

        if (!await IsSeededAsync(connection, transaction, cancellationToken).ConfigureAwait(false))
        {
            await SeedAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<bool> IsSeededAsync(SqliteConnection connection, SqliteTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT EXISTS (SELECT 1 FROM support_desk_meta WHERE key = $key)
                OR EXISTS (SELECT 1 FROM customers);
            """;
        command.Parameters.AddWithValue("$key", SupportDeskSchema.SeedMarkerKey);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != 0;
    }

    private static async Task SeedAsync(SqliteConnection connection, SqliteTransaction transaction, CancellationToken cancellationToken)
    {
        var customerColumns = SupportDeskSchema.CustomerColumns.Select(static c => c.Name).ToArray();
        string[] orderColumns = ["id", "customer_id", "created_at", "updated_at", "status", "total_cents", "currency", "items_json", "shipping_address", "payment_reference"];

        await using var insertCustomer = CreateInsert(connection, transaction, "customers", customerColumns);
        await using var insertOrder = CreateInsert(connection, transaction, "orders", orderColumns);

        foreach (var customer in SupportDeskSeed.Build())
        {
            await InsertRowAsync(insertCustomer, customerColumns, customer.Row, cancellationToken).ConfigureAwait(false);
            foreach (var order in customer.Orders)
            {
                await InsertRowAsync(insertOrder, orderColumns, order, cancellationToken).ConfigureAwait(false);
            }
        }

        await using var marker = connection.CreateCommand();
        marker.Transaction = transaction;
        marker.CommandText = "INSERT INTO support_desk_meta (key, value) VALUES ($key, $value);";
        marker.Parameters.AddWithValue("$key", SupportDeskSchema.SeedMarkerKey);
        marker.Parameters.AddWithValue("$value", SupportDeskSchema.SeedVersion);
        await marker.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // Table and column names come from the compile-time schema, never from callers; every value is a parameter.
    private static SqliteCommand CreateInsert(SqliteConnection connection, SqliteTransaction transaction, string table, string[] columns)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select(static c => "$" + c))});";
        foreach (var column in columns)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = "$" + column });
        }

        return command;
    }

    private static async Task InsertRowAsync(SqliteCommand command, string[] columns, IReadOnlyDictionary<string, object?> row, CancellationToken cancellationToken)
    {
        if (row.Count != columns.Length)
        {
            throw new InvalidOperationException($"Seed row has {row.Count} values but the table has {columns.Length} columns.");
        }

        foreach (var column in columns)
        {
            // A missing key throws: a schema change without a matching seed change should fail loudly.
            command.Parameters["$" + column].Value = row[column] ?? DBNull.Value;
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the complete customer row (all columns) for an email, or null when there is none.</summary>
    internal async Task<IReadOnlyDictionary<string, object?>?> FindCustomerRowByEmailAsync(string email, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();

        // SELECT * on purpose: the demo's data layer over-fetches, and only the tool's projection stands between
        // these columns and the agent. The email column is COLLATE NOCASE, so the match is case-insensitive.
        command.CommandText = "SELECT * FROM customers WHERE email = $email AND deleted_at IS NULL LIMIT 1;";
        command.Parameters.AddWithValue("$email", email);

        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var row = new Dictionary<string, object?>(reader.FieldCount, StringComparer.Ordinal);
        for (var i = 0; i < reader.FieldCount; i++)
        {
            row[reader.GetName(i)] = await reader.IsDBNullAsync(i, cancellationToken).ConfigureAwait(false) ? null : reader.GetValue(i);
        }

        return row;
    }

    internal async Task<bool> CustomerExistsAsync(string customerId, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await CustomerExistsAsync(connection, null, customerId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Orders for a customer, newest first.</summary>
    internal async Task<IReadOnlyList<OrderSummary>> ListOrdersAsync(string customerId, int limit, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, created_at, status, total_cents, currency
            FROM orders
            WHERE customer_id = $customer_id
            ORDER BY created_at DESC, id DESC
            LIMIT $limit;
            """;
        command.Parameters.AddWithValue("$customer_id", customerId);
        command.Parameters.AddWithValue("$limit", limit);

        var orders = new List<OrderSummary>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            orders.Add(new OrderSummary(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetString(4)));
        }

        return orders;
    }

    /// <summary>
    /// Inserts an issued refund. Returns null (and writes nothing) when the customer does not exist.
    /// Arguments must already be validated; the table's CHECK constraints are the last line of defence.
    /// </summary>
    internal async Task<RefundReceipt?> CreateRefundAsync(
        string customerId,
        long amountCents,
        string reason,
        string? requestId,
        string? clientName,
        CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // Existence check and insert share one write transaction so a concurrent delete cannot slip in between.
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        if (!await CustomerExistsAsync(connection, transaction, customerId, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var refundId = "rf_" + RandomNumberGenerator.GetString(RefundIdAlphabet, 12);
        const string Status = "issued";

        await using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO refunds (id, customer_id, amount_cents, reason, status, created_at, mcp_request_id, mcp_client_name)
                VALUES ($id, $customer_id, $amount_cents, $reason, $status, $created_at, $mcp_request_id, $mcp_client_name);
                """;
            command.Parameters.AddWithValue("$id", refundId);
            command.Parameters.AddWithValue("$customer_id", customerId);
            command.Parameters.AddWithValue("$amount_cents", amountCents);
            command.Parameters.AddWithValue("$reason", reason);
            command.Parameters.AddWithValue("$status", Status);
            command.Parameters.AddWithValue("$created_at", SupportDeskSeed.Timestamp(_timeProvider.GetUtcNow().UtcDateTime));
            command.Parameters.AddWithValue("$mcp_request_id", (object?)requestId ?? DBNull.Value);
            command.Parameters.AddWithValue("$mcp_client_name", (object?)clientName ?? DBNull.Value);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return new RefundReceipt(refundId, customerId, amountCents, reason, Status);
    }

    private static async Task<bool> CustomerExistsAsync(SqliteConnection connection, SqliteTransaction? transaction, string customerId, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT EXISTS (SELECT 1 FROM customers WHERE id = $id AND deleted_at IS NULL);";
        command.Parameters.AddWithValue("$id", customerId);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture) != 0;
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
