using System.Data;
using System.Runtime.CompilerServices;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Writing;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Audit.Storage;

/// <summary>
/// The audit trail in one SQLite file: the embedded default for a single node (or several processes on one machine).
/// </summary>
/// <remarks>
/// Every append is one <c>BEGIN IMMEDIATE</c> transaction, which takes the file's write lock before the heads are read,
/// so appenders in any process are serialised and each continues the chain from the head the previous one left.
/// A duplicate entry id (already stored, or twice in the batch) violates the id's UNIQUE constraint: the whole batch
/// rolls back and the <see cref="SqliteException"/> propagates. Microsoft.Data.Sqlite's async methods run
/// synchronously; that is acceptable for a local file written in group-committed batches.
/// </remarks>
public sealed class SqliteAuditStore : IAuditStore, IDisposable
{
    // busy_timeout makes a second writer wait for the lock inside SQLite rather than fail with SQLITE_BUSY.
    // synchronous=FULL (the default) fsyncs the WAL on every commit, so an acknowledged batch survives power loss;
    // NORMAL only writes it, which survives the process dying but not the machine. Both are per connection,
    // hence applied on every open.
    private const string FullPragmasSql = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;";
    private const string NormalPragmasSql = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;";

    // SQLite checkpoints the WAL inside the commit that takes it past wal_autocheckpoint pages, and that commit waits
    // for the checkpoint's writes and fsync. A lone record rewrites about 8 pages (its row, the indexes, the head),
    // so at SQLite's default of 1,000 pages about one commit in 125 paid for a checkpoint, which is what a guarded
    // read's p99 showed. At 4,000 pages it is one in 500, each checkpoint writes index pages that were rewritten
    // many times only once, and the WAL stays under about 16 MB.
    private const string AppenderPragmasSql = "PRAGMA wal_autocheckpoint = 4000;";

    private const string SelectHeadSql = "SELECT seq, hash FROM audit_heads WHERE tenant_id = @tenant_id;";

    private const string UpsertHeadSql = """
        INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (@tenant_id, @seq, @hash)
        ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;
        """;

    private const string InsertSql = $"""
        INSERT INTO audit_records ({AuditRows.Columns}) VALUES (
            @tenant_id, @seq, @id, @ts, @agent_id, @user_id, @session_id, @token_id, @kind, @server, @tool, @arguments, @arguments_hash,
            @decision, @code, @outcome, @error_type, @result_hash, @result_size, @latency_ms, @confirmation_id, @silo, @detail, @prev_hash, @hash);
        """;

    private const string SelectAnchorSql = "SELECT seq, hash FROM audit_anchors WHERE tenant_id = @tenant_id;";

    private const string SelectChainSql = $"SELECT {AuditRows.Columns} FROM audit_records WHERE tenant_id = @tenant_id ORDER BY seq;";

    // The last record to purge is the highest seq among rows older than the cutoff; everything up to it goes,
    // so the retained chain stays contiguous even where timestamps from several silos interleave.
    private const string SelectPurgeEndSql = """
        SELECT seq, hash FROM audit_records
        WHERE tenant_id = @tenant_id AND seq = (SELECT max(seq) FROM audit_records WHERE tenant_id = @tenant_id AND ts < @before);
        """;

    private const string UpsertAnchorSql = """
        INSERT INTO audit_anchors (tenant_id, seq, hash) VALUES (@tenant_id, @seq, @hash)
        ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;
        """;

    private const string DeleteUpToSql = "DELETE FROM audit_records WHERE tenant_id = @tenant_id AND seq <= @seq;";

    private readonly string _connectionString;
    private readonly string _pragmasSql;

    // The connection appends run on between batches, with its statements prepared once: a lone call's record is
    // usually a whole batch, and preparing five statements and binding 25 new parameters for it cost more than the
    // insert itself.
    private Appender? _idleAppender;
    private volatile bool _disposed;

    /// <param name="databasePath">The database file; it and its directory are created if missing.</param>
    /// <param name="synchronous">Whether commits are fsynced (survive power loss) or only written (survive the process).</param>
    public SqliteAuditStore(string databasePath, SqliteSynchronous synchronous = SqliteSynchronous.Full)
    {
        _pragmasSql = synchronous == SqliteSynchronous.Normal ? NormalPragmasSql : FullPragmasSql;
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);

        // Resolved once so a later change of working directory cannot point the store at another file.
        DatabasePath = Path.GetFullPath(databasePath);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
        }.ToString();
    }

    public string DatabasePath { get; }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);

        // WAL lets readers (queries, exports, verify) run alongside the single writer. The mode is stored in the
        // file, so setting it once here is enough; it cannot be changed inside a transaction.
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "PRAGMA journal_mode = WAL;";
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        await AuditMigrator.MigrateAsync(connection, AuditDialect.Sqlite, cancellationToken);
    }

    public Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        AuditRows.Validate(entries);
        if (entries.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<AuditRecord>>([]);
        }

        // Microsoft.Data.Sqlite runs synchronously anyway; doing so directly saves the async machinery per statement.
        cancellationToken.ThrowIfCancellationRequested();
        var appender = Interlocked.Exchange(ref _idleAppender, null) ?? Appender.Open(this);
        IReadOnlyList<AuditRecord> records;
        try
        {
            records = appender.Append(entries);
        }
        catch
        {
            // Whatever went wrong (a locked or damaged file, a duplicate id), the next batch starts on a fresh connection.
            appender.Dispose();
            throw;
        }

        // One appender is kept for the next batch; one that ran beside it (concurrent callers) is closed.
        if (_disposed || Interlocked.CompareExchange(ref _idleAppender, appender, null) is not null) appender.Dispose();
        return Task.FromResult(records);
    }

    /// <summary>Closes the connection kept for appends.</summary>
    public void Dispose()
    {
        _disposed = true;
        Interlocked.Exchange(ref _idleAppender, null)?.Dispose();
    }

    public async Task<AuditPage> QueryAsync(AuditQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var after = query.Cursor is { } cursor ? AuditCursor.Decode(cursor) : (AuditCursor?)null;
        if (AuditFilter.MatchesNothing(query))
        {
            return new AuditPage([], null);
        }

        var limit = AuditFilter.ClampLimit(query.Limit);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var where = AuditFilter.Where(command, AuditDialect.Sqlite, query, after);
        // One row more than the page tells whether another page exists without a second query.
        command.CommandText = $"SELECT {AuditRows.Columns} FROM audit_records {where} {AuditRows.NewestFirst} LIMIT @limit;";
        command.Parameters.Add("@limit", SqliteType.Integer).Value = limit + 1;

        return await AuditRows.ReadPageAsync(command, AuditDialect.Sqlite, limit, cancellationToken);
    }

    public async IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (AuditFilter.MatchesNothing(query))
        {
            yield break;
        }

        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        // WAL gives the reader a stable snapshot for as long as it is open, without blocking appenders.
        command.CommandText = $"SELECT {AuditRows.Columns} FROM audit_records {AuditFilter.Where(command, AuditDialect.Sqlite, query, null)} {AuditRows.NewestFirst};";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return AuditRows.Read(reader, AuditDialect.Sqlite);
        }
    }

    public async Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);

        await using var connection = await OpenAsync(cancellationToken);
        // A deferred (read) transaction: anchor, records and head all come from one WAL snapshot, so a purge or an
        // append committing meanwhile cannot make an intact chain look broken.
        await using var transaction = connection.BeginTransaction(deferred: true);

        var anchor = await ReadLinkAsync(connection, transaction, SelectAnchorSql, tenantId, cancellationToken);
        var verifier = new ChainVerifier(anchor);
        await using (var command = Command(connection, transaction, SelectChainSql))
        {
            command.Parameters.Add("@tenant_id", SqliteType.Text).Value = tenantId;
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (!verifier.Check(AuditRows.Read(reader, AuditDialect.Sqlite)))
                {
                    break;
                }
            }
        }

        var head = await ReadLinkAsync(connection, transaction, SelectHeadSql, tenantId, cancellationToken);
        return verifier.Finish(head);
    }

    public async Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);

        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: false);

        ChainLink? end;
        await using (var select = Command(connection, transaction, SelectPurgeEndSql))
        {
            select.Parameters.Add("@tenant_id", SqliteType.Text).Value = tenantId;
            select.Parameters.Add("@before", SqliteType.Integer).Value = AuditRows.ToUnixMicros(before);
            await using var reader = await select.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken);
            end = await reader.ReadAsync(cancellationToken) ? new ChainLink(reader.GetInt64(0), reader.GetString(1)) : null;
        }

        if (end is not { } last)
        {
            return 0;
        }

        await using (var anchor = Command(connection, transaction, UpsertAnchorSql))
        {
            anchor.Parameters.Add("@tenant_id", SqliteType.Text).Value = tenantId;
            anchor.Parameters.Add("@seq", SqliteType.Integer).Value = last.Sequence;
            anchor.Parameters.Add("@hash", SqliteType.Text).Value = last.Hash;
            await anchor.ExecuteNonQueryAsync(cancellationToken);
        }

        long deleted;
        await using (var delete = Command(connection, transaction, DeleteUpToSql))
        {
            delete.Parameters.Add("@tenant_id", SqliteType.Text).Value = tenantId;
            delete.Parameters.Add("@seq", SqliteType.Integer).Value = last.Sequence;
            deleted = await delete.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        return deleted;
    }

    public async Task<bool> PingAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await using var connection = await OpenAsync(timeout.Token);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1;";
            command.CommandTimeout = 2;
            return Convert.ToInt64(await command.ExecuteScalarAsync(timeout.Token), System.Globalization.CultureInfo.InvariantCulture) == 1;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Any failure (missing directory, corrupt or locked file) means "not healthy", not an error for the caller.
            return false;
        }
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(DatabasePath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragmas = connection.CreateCommand();
            pragmas.CommandText = _pragmasSql;
            await pragmas.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private SqliteConnection Open()
    {
        var directory = Path.GetDirectoryName(DatabasePath);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using var pragmas = connection.CreateCommand();
            pragmas.CommandText = _pragmasSql;
            pragmas.ExecuteNonQuery();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static async Task<ChainLink?> ReadLinkAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, string tenantId, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.Add("@tenant_id", SqliteType.Text).Value = tenantId;
        await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new ChainLink(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    /// <summary>
    /// One open connection and its append statements, prepared once and re-bound per record. Used by one batch at a
    /// time: <see cref="AppendAsync"/> takes it, and puts it back only after the batch committed.
    /// </summary>
    private sealed class Appender : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _selectHead;
        private readonly SqliteParameter _selectTenant;
        private readonly SqliteCommand _insert;
        private readonly SqliteParameter[] _row;
        private readonly SqliteCommand _upsertHead;
        private readonly SqliteParameter _headTenant;
        private readonly SqliteParameter _headSeq;
        private readonly SqliteParameter _headHash;
        private readonly Dictionary<string, ChainLink> _heads = new(StringComparer.Ordinal);

        private Appender(SqliteConnection connection)
        {
            _connection = connection;
            _selectHead = Prepared(connection, SelectHeadSql);
            _selectTenant = _selectHead.Parameters.Add("@tenant_id", SqliteType.Text);
            _insert = Prepared(connection, InsertSql);
            _row = InsertParameters(_insert);
            _upsertHead = Prepared(connection, UpsertHeadSql);
            _headTenant = _upsertHead.Parameters.Add("@tenant_id", SqliteType.Text);
            _headSeq = _upsertHead.Parameters.Add("@seq", SqliteType.Integer);
            _headHash = _upsertHead.Parameters.Add("@hash", SqliteType.Text);
        }

        public static Appender Open(SqliteAuditStore store)
        {
            var connection = store.Open();
            try
            {
                using (var pragma = connection.CreateCommand())
                {
                    pragma.CommandText = AppenderPragmasSql;
                    pragma.ExecuteNonQuery();
                }

                return new Appender(connection);
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        public AuditRecord[] Append(IReadOnlyList<AuditEntry> entries)
        {
            // BEGIN IMMEDIATE takes the file's write lock before the heads are read (see the class remarks).
            using var transaction = _connection.BeginTransaction(deferred: false);
            _selectHead.Transaction = transaction;
            _insert.Transaction = transaction;
            _upsertHead.Transaction = transaction;
            _heads.Clear();

            foreach (var entry in entries)
            {
                if (_heads.ContainsKey(entry.TenantId))
                {
                    continue;
                }

                _selectTenant.Value = entry.TenantId;
                using var reader = _selectHead.ExecuteReader(CommandBehavior.SingleRow);
                _heads[entry.TenantId] = reader.Read() ? new ChainLink(reader.GetInt64(0), reader.GetString(1)) : new ChainLink(0, AuditChain.Genesis);
            }

            var records = new AuditRecord[entries.Count];
            for (var i = 0; i < entries.Count; i++)
            {
                var entry = entries[i].Timestamp == AuditChain.Normalize(entries[i].Timestamp) ? entries[i] : entries[i] with { Timestamp = AuditChain.Normalize(entries[i].Timestamp) };
                var head = _heads[entry.TenantId];
                var sequence = head.Sequence + 1;
                var hash = AuditChain.ComputeHash(entry, sequence, head.Hash);
                records[i] = new AuditRecord(entry, sequence, head.Hash, hash);
                _heads[entry.TenantId] = new ChainLink(sequence, hash);

                Bind(_row, records[i]);
                _insert.ExecuteNonQuery();
            }

            foreach (var (tenantId, head) in _heads)
            {
                _headTenant.Value = tenantId;
                _headSeq.Value = head.Sequence;
                _headHash.Value = head.Hash;
                _upsertHead.ExecuteNonQuery();
            }

            transaction.Commit();
            return records;
        }

        public void Dispose()
        {
            _selectHead.Dispose();
            _insert.Dispose();
            _upsertHead.Dispose();
            _connection.Dispose();
        }

        private static SqliteCommand Prepared(SqliteConnection connection, string sql)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            return command;
        }
    }

    private static SqliteParameter[] InsertParameters(SqliteCommand command)
    {
        (string Name, SqliteType Type)[] columns =
        [
            ("@tenant_id", SqliteType.Text), ("@seq", SqliteType.Integer), ("@id", SqliteType.Text), ("@ts", SqliteType.Integer),
            ("@agent_id", SqliteType.Text), ("@user_id", SqliteType.Text), ("@session_id", SqliteType.Text), ("@token_id", SqliteType.Text),
            ("@kind", SqliteType.Text), ("@server", SqliteType.Text), ("@tool", SqliteType.Text), ("@arguments", SqliteType.Text),
            ("@arguments_hash", SqliteType.Text), ("@decision", SqliteType.Text), ("@code", SqliteType.Text), ("@outcome", SqliteType.Text),
            ("@error_type", SqliteType.Text), ("@result_hash", SqliteType.Text), ("@result_size", SqliteType.Integer), ("@latency_ms", SqliteType.Real),
            ("@confirmation_id", SqliteType.Text), ("@silo", SqliteType.Text), ("@detail", SqliteType.Text), ("@prev_hash", SqliteType.Text),
            ("@hash", SqliteType.Text),
        ];

        var parameters = new SqliteParameter[columns.Length];
        for (var i = 0; i < columns.Length; i++)
        {
            parameters[i] = command.Parameters.Add(columns[i].Name, columns[i].Type);
        }

        return parameters;
    }

    // Same order as InsertParameters (and AuditRows.Columns).
    private static void Bind(SqliteParameter[] p, AuditRecord record)
    {
        var e = record.Entry;
        p[0].Value = e.TenantId;
        p[1].Value = record.Sequence;
        p[2].Value = e.Id;
        p[3].Value = AuditRows.ToUnixMicros(e.Timestamp);
        p[4].Value = Text(e.AgentId);
        p[5].Value = Text(e.UserId);
        p[6].Value = Text(e.SessionId);
        p[7].Value = Text(e.TokenId);
        p[8].Value = e.Kind;
        p[9].Value = Text(e.Server);
        p[10].Value = Text(e.Tool);
        p[11].Value = Text(e.Arguments);
        p[12].Value = Text(e.ArgumentsHash);
        p[13].Value = e.Decision;
        p[14].Value = Text(e.Code);
        p[15].Value = e.Outcome;
        p[16].Value = Text(e.ErrorType);
        p[17].Value = Text(e.ResultHash);
        p[18].Value = e.ResultSize is { } size ? size : DBNull.Value;
        p[19].Value = e.LatencyMs is { } latency ? latency : DBNull.Value;
        p[20].Value = Text(e.ConfirmationId);
        p[21].Value = Text(e.Silo);
        p[22].Value = Text(e.Detail);
        p[23].Value = record.PreviousHash;
        p[24].Value = record.Hash;

        static object Text(string? value) => value is null ? DBNull.Value : value;
    }
}
