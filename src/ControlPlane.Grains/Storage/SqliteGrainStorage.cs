using System.Data;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Runtime;
using Orleans.Storage;

namespace ControlPlane.Grains.Storage;

/// <summary>
/// Grain state in one SQLite file, for the embedded single-node default (Orleans' ADO.NET providers have no SQLite scripts).
/// Optimistic concurrency follows the Orleans provider contract: every write or clear must present the ETag it last read,
/// and a mismatch throws <see cref="InconsistentStateException"/> without touching the row.
/// </summary>
/// <remarks>
/// Microsoft.Data.Sqlite's async methods complete synchronously; that is acceptable here because the file is local
/// and grain state writes are rare compared to grain calls. Awaits keep the caller's context (no ConfigureAwait(false))
/// because the results are written into the calling grain's <see cref="IGrainState{T}"/>.
/// </remarks>
internal sealed partial class SqliteGrainStorage : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    // The provider name is part of the key so several providers can share one file without seeing each other's rows.
    private const string CreateTableSql = """
        CREATE TABLE IF NOT EXISTS grain_state (
            provider   TEXT NOT NULL,
            state_name TEXT NOT NULL,
            grain_id   TEXT NOT NULL,
            payload    BLOB NOT NULL,
            etag       TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (provider, state_name, grain_id)
        );
        """;

    // busy_timeout lets a writer wait for another connection's lock inside SQLite instead of failing with SQLITE_BUSY.
    // synchronous=FULL fsyncs the WAL on every commit. NORMAL would be faster but can lose the last commits on power
    // loss; a lost write the grain already saw acknowledged leaves it holding an ETag the file no longer has, so every
    // later write would conflict. State writes are rare, so the fsync is cheap insurance.
    // Both are per-connection settings, hence applied on every open rather than once at start.
    private const string ConnectionPragmasSql = "PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;";

    private const string KeyPredicate = "provider = @provider AND state_name = @state_name AND grain_id = @grain_id";

    private const string SelectSql = $"SELECT payload, etag FROM grain_state WHERE {KeyPredicate};";

    private const string SelectETagSql = $"SELECT etag FROM grain_state WHERE {KeyPredicate};";

    // DO NOTHING turns a lost race on the primary key into "0 rows changed" instead of an exception.
    private const string InsertSql = """
        INSERT INTO grain_state (provider, state_name, grain_id, payload, etag, updated_at)
        VALUES (@provider, @state_name, @grain_id, @payload, @new_etag, @updated_at)
        ON CONFLICT (provider, state_name, grain_id) DO NOTHING;
        """;

    private const string UpdateSql = $"""
        UPDATE grain_state SET payload = @payload, etag = @new_etag, updated_at = @updated_at
        WHERE {KeyPredicate} AND etag = @etag;
        """;

    private const string DeleteSql = $"DELETE FROM grain_state WHERE {KeyPredicate} AND etag = @etag;";

    // updated_at is round-trip UTC text ("O", always +00:00), so text order is time order. Bounded batches keep each
    // write transaction short: grain writes wait behind it.
    private const string DeleteUnwrittenSinceSql = """
        DELETE FROM grain_state WHERE rowid IN (
            SELECT rowid FROM grain_state
            WHERE provider = @provider AND state_name = @state_name AND updated_at < @cutoff
            LIMIT @batch);
        """;

    private readonly string _name;
    private readonly string _databasePath;
    private readonly string _connectionString;
    private readonly IGrainStorageSerializer _serializer;
    private readonly ILogger<SqliteGrainStorage> _logger;
    private readonly TimeProvider _timeProvider;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private volatile bool _initialized;

    public SqliteGrainStorage(
        string name,
        SqliteGrainStorageOptions options,
        IGrainStorageSerializer serializer,
        ILogger<SqliteGrainStorage> logger,
        TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        SqliteGrainStorageOptionsValidator.Validate(options, name);
        ArgumentNullException.ThrowIfNull(serializer);
        ArgumentNullException.ThrowIfNull(logger);

        _name = name;
        // Resolved once so a later change of working directory cannot point the provider at a different file.
        _databasePath = Path.GetFullPath(options.DatabasePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = _databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
        _serializer = serializer;
        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);

        // Creating the schema at start surfaces a bad path or a locked file before the silo accepts grain calls.
        // Grains are deactivated (and write their state) when BecomeActive stops, which is before this stage stops.
        lifecycle.Subscribe(
            $"{nameof(SqliteGrainStorage)}-{_name}",
            ServiceLifecycleStage.ApplicationServices,
            EnsureInitializedAsync,
            OnStopAsync);
    }

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        ReadStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        WriteStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        ClearStateAsync(stateName, grainId, grainState, CancellationToken.None);

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);

        await using var connection = await OpenAsync(cancellationToken);
        await using var command = CreateCommand(connection, SelectSql, stateName, grainId);
        await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            grainState.State = CreateState<T>();
            grainState.ETag = null;
            grainState.RecordExists = false;
            return;
        }

        var payload = reader.GetFieldValue<byte[]>(0);
        var etag = reader.GetString(1);
        var state = _serializer.Deserialize<T>(new BinaryData(payload));
        grainState.State = state is null ? CreateState<T>() : state;
        grainState.ETag = etag;
        grainState.RecordExists = true;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);

        var expectedETag = grainState.ETag;
        var payload = _serializer.Serialize(grainState.State).ToArray();
        var newETag = NewETag();

        await using var connection = await OpenAsync(cancellationToken);

        // Either branch is one statement, so the ETag check and the write are a single atomic step in SQLite.
        await using var command = CreateCommand(connection, expectedETag is null ? InsertSql : UpdateSql, stateName, grainId);
        command.Parameters.Add("@payload", SqliteType.Blob).Value = payload;
        command.Parameters.Add("@new_etag", SqliteType.Text).Value = newETag;
        command.Parameters.Add("@updated_at", SqliteType.Text).Value = _timeProvider.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
        if (expectedETag is not null)
        {
            command.Parameters.Add("@etag", SqliteType.Text).Value = expectedETag;
        }

        if (await command.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            throw await ConflictAsync(connection, "write", stateName, grainId, expectedETag, cancellationToken);
        }

        grainState.ETag = newETag;
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentNullException.ThrowIfNull(grainState);

        var expectedETag = grainState.ETag;
        await using var connection = await OpenAsync(cancellationToken);
        if (expectedETag is null)
        {
            // A caller that never saw a row has nothing to delete; a row that exists now was written by someone
            // else, and clearing it blindly would discard their state.
            var storedETag = await ReadStoredETagAsync(connection, stateName, grainId, cancellationToken);
            if (storedETag is not null)
            {
                throw Conflict("clear", stateName, grainId, storedETag, expectedETag);
            }
        }
        else
        {
            await using var command = CreateCommand(connection, DeleteSql, stateName, grainId);
            command.Parameters.Add("@etag", SqliteType.Text).Value = expectedETag;
            if (await command.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                throw await ConflictAsync(connection, "clear", stateName, grainId, expectedETag, cancellationToken);
            }
        }

        grainState.State = CreateState<T>();
        grainState.ETag = null;
        grainState.RecordExists = false;
    }

    /// <summary>
    /// Deletes every <paramref name="stateName"/> record last written before <paramref name="cutoff"/>, for retention.
    /// A grain still active with such a record finds its ETag gone at its next write and reloads, as after any conflict.
    /// </summary>
    internal async Task<long> DeleteUnwrittenSinceAsync(string stateName, DateTimeOffset cutoff, int batchSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stateName);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var before = cutoff.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);
        long deleted = 0;
        await using var connection = await OpenAsync(cancellationToken);
        while (true)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = DeleteUnwrittenSinceSql;
            command.Parameters.Add("@provider", SqliteType.Text).Value = _name;
            command.Parameters.Add("@state_name", SqliteType.Text).Value = stateName;
            command.Parameters.Add("@cutoff", SqliteType.Text).Value = before;
            command.Parameters.Add("@batch", SqliteType.Integer).Value = batchSize;
            var batch = await command.ExecuteNonQueryAsync(cancellationToken);
            deleted += batch;
            if (batch < batchSize) return deleted;
        }
    }

    public void Dispose() => _initLock.Dispose();

    private async Task EnsureInitializedAsync(CancellationToken cancellationToken)
    {
        if (_initialized)
        {
            return;
        }

        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_initialized)
            {
                return;
            }

            var directory = Path.GetDirectoryName(_databasePath);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }

            await using var connection = await OpenConnectionAsync(cancellationToken);
            await using var command = connection.CreateCommand();

            // WAL lets reads proceed while a write commits; the mode is stored in the file, so setting it once suffices.
            command.CommandText = "PRAGMA journal_mode = WAL;";
            var mode = await command.ExecuteScalarAsync(cancellationToken) as string;
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                LogWalUnavailable(_logger, _name, _databasePath, mode);
            }

            command.CommandText = CreateTableSql;
            await command.ExecuteNonQueryAsync(cancellationToken);

            _initialized = true;
            LogInitialized(_logger, _name, _databasePath);
        }
        finally
        {
            _initLock.Release();
        }
    }

    private Task OnStopAsync(CancellationToken cancellationToken)
    {
        // Idle pooled connections would otherwise keep the file (and its -wal/-shm companions) open after the silo stops.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return Task.CompletedTask;
    }

    // Initialization is also awaited here so the storage works when constructed directly, outside a silo lifecycle.
    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        await EnsureInitializedAsync(cancellationToken);
        return await OpenConnectionAsync(cancellationToken);
    }

    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = ConnectionPragmasSql;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private SqliteCommand CreateCommand(SqliteConnection connection, string sql, string stateName, GrainId grainId)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.Add("@provider", SqliteType.Text).Value = _name;
        command.Parameters.Add("@state_name", SqliteType.Text).Value = stateName;
        command.Parameters.Add("@grain_id", SqliteType.Text).Value = grainId.ToString();
        return command;
    }

    private async Task<string?> ReadStoredETagAsync(SqliteConnection connection, string stateName, GrainId grainId, CancellationToken cancellationToken)
    {
        await using var command = CreateCommand(connection, SelectETagSql, stateName, grainId);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    // The stored ETag is read after the failed statement only to make the exception useful; it may already be stale.
    private async Task<InconsistentStateException> ConflictAsync(
        SqliteConnection connection, string operation, string stateName, GrainId grainId, string? expectedETag, CancellationToken cancellationToken)
    {
        var storedETag = await ReadStoredETagAsync(connection, stateName, grainId, cancellationToken);
        return Conflict(operation, stateName, grainId, storedETag, expectedETag);
    }

    private InconsistentStateException Conflict(string operation, string stateName, GrainId grainId, string? storedETag, string? expectedETag)
    {
        LogETagConflict(_logger, _name, operation, stateName, grainId, expectedETag, storedETag);
        return new InconsistentStateException(
            $"SQLite grain storage '{_name}' rejected the {operation} of state '{stateName}' for grain {grainId}: " +
            $"expected ETag '{expectedETag ?? "(none)"}', stored ETag '{storedETag ?? "(none)"}'.",
            storedETag,
            expectedETag);
    }

    // A GUID rather than a version counter: Clear deletes the row, so a counter would restart and a stale ETag
    // from before the clear could match again.
    private static string NewETag() => Guid.NewGuid().ToString("N");

    private static T CreateState<T>() => Activator.CreateInstance<T>();

    [LoggerMessage(Level = LogLevel.Information, Message = "SQLite grain storage '{Name}' ready at {DatabasePath}")]
    private static partial void LogInitialized(ILogger logger, string name, string databasePath);

    [LoggerMessage(Level = LogLevel.Warning, Message = "SQLite grain storage '{Name}' could not enable WAL on {DatabasePath}; journal mode is {Mode}")]
    private static partial void LogWalUnavailable(ILogger logger, string name, string databasePath, string? mode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "SQLite grain storage '{Name}' rejected {Operation} of '{StateName}' for {GrainId}: expected ETag {ExpectedETag}, stored {StoredETag}")]
    private static partial void LogETagConflict(ILogger logger, string name, string operation, string stateName, GrainId grainId, string? expectedETag, string? storedETag);
}
