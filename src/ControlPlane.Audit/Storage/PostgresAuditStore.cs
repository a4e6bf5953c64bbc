using System.Collections.Concurrent;
using System.Data;
using System.Runtime.CompilerServices;
using ControlPlane.Audit.Model;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Audit.Storage;

/// <summary>
/// The audit trail in PostgreSQL: the production store, shared by every silo of a cluster.
/// </summary>
/// <remarks>
/// An append locks the heads of the tenants in its batch (in tenant order, so two batches never wait on each other
/// in a cycle), continues each chain from its head, writes all rows with one binary COPY and moves the heads, all in
/// one transaction: appends to one tenant are serialised across silos, appends to different tenants run in parallel.
/// A lone record (or a small batch of one tenant) whose tenant this store appended to last skips the lock and its
/// round trip: it moves the head on condition that it is still where this store left it, and falls back to the lock
/// when another silo has moved it since.
/// A duplicate entry id (already stored, or twice in the batch) violates the id's UNIQUE constraint: the whole batch
/// rolls back and the <see cref="PostgresException"/> (SQL state 23505) propagates, so a retried batch is never
/// recorded twice.
/// </remarks>
public sealed class PostgresAuditStore : IAuditStore, IAsyncDisposable, IDisposable
{
    // New tenants get a genesis head first so that every tenant in the batch has a row to lock. Sorted, so that
    // two batches creating the same new tenants insert (and so wait on) them in the same order.
    private const string EnsureHeadsSql = """
        INSERT INTO audit_heads (tenant_id, seq, hash)
        SELECT t, 0, $2 FROM unnest($1::text[]) AS t ORDER BY t COLLATE "C"
        ON CONFLICT (tenant_id) DO NOTHING
        """;

    private const string LockHeadsSql = "SELECT tenant_id, seq, hash FROM audit_heads WHERE tenant_id = ANY($1) ORDER BY tenant_id FOR UPDATE";

    // Binary COPY is the cheapest way into the table: measured against a single unnest(...) INSERT of the same
    // 500-row batches it cost the server about a quarter less CPU per record. The rows are encoded by
    // PostgresCopyRows and sent raw, which costs the client far less than binding each value through Npgsql.
    private const string CopySql = $"COPY audit_records ({AuditRows.Columns}) FROM STDIN (FORMAT BINARY)";

    private const string MoveHeadsSql = """
        UPDATE audit_heads AS h SET seq = v.seq, hash = v.hash
        FROM unnest($1::text[], $2::bigint[], $3::text[]) AS v (tenant_id, seq, hash)
        WHERE h.tenant_id = v.tenant_id
        """;

    // Moves one tenant's head only from the link this store last wrote; 1 / 0 (an aggregate, so never folded at
    // plan time) aborts the transaction when it was not there any more.
    private const string MoveKnownHeadSql = """
        WITH moved AS (
            UPDATE audit_heads SET seq = $2, hash = $3
            WHERE tenant_id = $1 AND seq = $4 AND hash = $5
            RETURNING 1)
        SELECT 1 / count(*)::int FROM moved
        """;

    private const string SelectHeadSql = "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1";

    private const string SelectAnchorSql = "SELECT seq, hash FROM audit_anchors WHERE tenant_id = $1";

    private const string SelectChainSql = $"SELECT {AuditRows.Columns} FROM audit_records WHERE tenant_id = $1 ORDER BY seq";

    // Purges of one tenant are serialised so that an older cutoff can never overwrite a newer anchor. An advisory
    // lock rather than the head row, so appends to the tenant carry on while a large purge deletes.
    private const string LockPurgeSql = "SELECT pg_advisory_xact_lock(hashtextextended('controlplane.audit.purge:' || $1, 0))";

    // The last record to purge is the highest seq among rows older than the cutoff; everything up to it goes,
    // so the retained chain stays contiguous even where timestamps from several silos interleave.
    private const string SelectPurgeEndSql = """
        SELECT seq, hash FROM audit_records
        WHERE tenant_id = $1 AND seq = (SELECT max(seq) FROM audit_records WHERE tenant_id = $1 AND ts < $2)
        """;

    private const string UpsertAnchorSql = """
        INSERT INTO audit_anchors (tenant_id, seq, hash) VALUES ($1, $2, $3)
        ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
        """;

    private const string DeleteUpToSql = "DELETE FROM audit_records WHERE tenant_id = $1 AND seq <= $2";

    private const int KnownHeadsLimit = 100_000;

    private readonly NpgsqlDataSource _dataSource;

    // The head each tenant's chain had after this store's last append to it. A hint, never trusted: an append from
    // it moves the head only if the head is still there (see TryAppendAfterKnownHeadAsync).
    private readonly ConcurrentDictionary<string, ChainLink> _knownHeads = new(StringComparer.Ordinal);

    /// <param name="connectionString">An Npgsql connection string for the audit database.</param>
    public PostgresAuditStore(string connectionString)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await AuditMigrator.MigrateAsync(connection, AuditDialect.PostgreSql, cancellationToken);
    }

    public async Task<IReadOnlyList<AuditRecord>> AppendAsync(IReadOnlyList<AuditEntry> entries, CancellationToken cancellationToken)
    {
        AuditRows.Validate(entries);
        if (entries.Count == 0)
        {
            return [];
        }

        var tenants = entries.Select(e => e.TenantId).Distinct(StringComparer.Ordinal).ToArray();
        if (entries.Count <= PipelinedBatchLimit)
        {
            return await AppendPipelinedAsync(entries, tenants, cancellationToken);
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        var heads = await LockHeadsAsync(new NpgsqlBatch(connection, transaction), tenants, cancellationToken);
        var records = Chain(entries, heads);
        using (var rows = new PostgresCopyRows(records.Length))
        {
            foreach (var record in records) rows.Add(record);
            rows.Complete();
            await using var copy = await connection.BeginRawBinaryCopyAsync(CopySql, cancellationToken);
            await copy.WriteAsync(rows.Written, cancellationToken);
        }

        await using (var move = new NpgsqlBatch(connection, transaction))
        {
            move.BatchCommands.Add(MoveHeads(heads));
            await move.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        Remember(heads);
        return records;
    }

    /// <summary>
    /// A small batch (a lone call's record, the usual case below full load) in at most two round trips instead of
    /// five: the heads are locked in the first, and the rows, the heads' move and the COMMIT go in one pipeline in
    /// the second. A batch of one tenant whose head this store moved last skips the first: see
    /// <see cref="TryAppendAfterKnownHeadAsync"/>. COPY cannot share a pipeline, so these rows are a parameterised
    /// INSERT; large batches keep COPY, which is cheaper per row. The transaction is BEGIN/COMMIT in the pipelines
    /// themselves, hence no NpgsqlTransaction.
    /// </summary>
    private async Task<IReadOnlyList<AuditRecord>> AppendPipelinedAsync(IReadOnlyList<AuditEntry> entries, string[] tenants, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            if (tenants.Length == 1 && _knownHeads.TryGetValue(tenants[0], out var known)
                && await TryAppendAfterKnownHeadAsync(connection, entries, tenants[0], known, cancellationToken) is { } appended)
            {
                return appended;
            }

            var begin = new NpgsqlBatch(connection);
            begin.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
            var heads = await LockHeadsAsync(begin, tenants, cancellationToken);
            var records = Chain(entries, heads);
            await using (var batch = new NpgsqlBatch(connection))
            {
                batch.BatchCommands.Add(InsertRows(records));
                batch.BatchCommands.Add(MoveHeads(heads));
                batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
                await batch.ExecuteNonQueryAsync(cancellationToken);
            }

            Remember(heads);
            return records;
        }
        catch
        {
            foreach (var tenant in tenants) _knownHeads.TryRemove(tenant, out _);
            await RollBackAsync(connection);
            throw;
        }
    }

    /// <summary>
    /// One round trip: BEGIN, the head's move from where this store last left it, the rows, COMMIT. The move is
    /// conditional on the head still being there; if another silo (or a concurrent batch) moved it since, the
    /// statement divides by zero, which aborts the transaction before the rows, and the caller locks and reads the
    /// head instead. A concurrent append holding the head's row lock is waited for, then the condition is
    /// re-checked against what it committed, so two appenders can never both continue from one head.
    /// </summary>
    /// <returns>The records, or null when the head has moved (nothing was written, the transaction is rolled back).</returns>
    private async Task<AuditRecord[]?> TryAppendAfterKnownHeadAsync(
        NpgsqlConnection connection, IReadOnlyList<AuditEntry> entries, string tenant, ChainLink known, CancellationToken cancellationToken)
    {
        var heads = new Dictionary<string, ChainLink>(1, StringComparer.Ordinal) { [tenant] = known };
        var records = Chain(entries, heads);
        var moved = heads[tenant];
        try
        {
            await using var batch = new NpgsqlBatch(connection);
            batch.BatchCommands.Add(new NpgsqlBatchCommand("BEGIN"));
            batch.BatchCommands.Add(Command(MoveKnownHeadSql, Value(tenant), Value(moved.Sequence), Value(moved.Hash), Value(known.Sequence), Value(known.Hash)));
            batch.BatchCommands.Add(InsertRows(records));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.DivisionByZero)
        {
            _knownHeads.TryRemove(tenant, out _);
            await RollBackAsync(connection);
            return null;
        }

        Remember(heads);
        return records;
    }

    // A failed statement leaves the transaction aborted (a duplicate id rolls the whole batch back): end it here
    // rather than hand a connection inside a transaction back to the pool.
    private static async Task RollBackAsync(NpgsqlConnection connection)
    {
        if (connection.State != ConnectionState.Open) return;
        try
        {
            await using var rollback = new NpgsqlCommand("ROLLBACK", connection);
            await rollback.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception)
        {
            // The connection is broken; Npgsql discards it.
        }
    }

    private void Remember(Dictionary<string, ChainLink> heads)
    {
        // Bounded: a store serving very many tenants forgets them all rather than grow without limit; the next
        // append of each simply locks and reads its head again.
        if (_knownHeads.Count > KnownHeadsLimit) _knownHeads.Clear();
        foreach (var (tenant, head) in heads) _knownHeads[tenant] = head;
    }

    /// <summary>Runs <paramref name="batch"/> (disposed here) with the ensure-and-lock of every tenant's head appended.</summary>
    private static async Task<Dictionary<string, ChainLink>> LockHeadsAsync(NpgsqlBatch batch, string[] tenants, CancellationToken cancellationToken)
    {
        var heads = new Dictionary<string, ChainLink>(StringComparer.Ordinal);
        await using (batch)
        {
            batch.BatchCommands.Add(Command(EnsureHeadsSql, Array(tenants, NpgsqlDbType.Text), Value(AuditChain.Genesis)));
            batch.BatchCommands.Add(Command(LockHeadsSql, Array(tenants, NpgsqlDbType.Text)));
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                heads[reader.GetString(0)] = new ChainLink(reader.GetInt64(1), reader.GetString(2));
            }
        }

        return heads.Count == tenants.Length
            ? heads
            : throw new InvalidOperationException("Could not lock the chain head of every tenant in the batch.");
    }

    private const int PipelinedBatchLimit = 8;

    // One INSERT statement per batch size up to the limit, built once.
    private static readonly string[] InsertSql = [.. Enumerable.Range(0, PipelinedBatchLimit + 1).Select(n => n == 0 ? "" :
        $"INSERT INTO audit_records ({AuditRows.Columns}) VALUES " + string.Join(", ", Enumerable.Range(0, n).Select(r =>
            "(" + string.Join(", ", Enumerable.Range(1, AuditRows.ColumnCount).Select(c => "$" + (r * AuditRows.ColumnCount + c))) + ")")))];

    private static AuditRecord[] Chain(IReadOnlyList<AuditEntry> entries, Dictionary<string, ChainLink> heads)
    {
        var records = new AuditRecord[entries.Count];
        for (var i = 0; i < records.Length; i++)
        {
            var entry = entries[i] with { Timestamp = AuditChain.Normalize(entries[i].Timestamp) };
            var head = heads[entry.TenantId];
            var sequence = head.Sequence + 1;
            var hash = AuditChain.ComputeHash(entry, sequence, head.Hash);
            records[i] = new AuditRecord(entry, sequence, head.Hash, hash);
            heads[entry.TenantId] = new ChainLink(sequence, hash);
        }

        return records;
    }

    /// <summary>The same columns, in the same order and types, as <see cref="PostgresCopyRows"/> writes.</summary>
    private static NpgsqlBatchCommand InsertRows(AuditRecord[] records)
    {
        var command = new NpgsqlBatchCommand(InsertSql[records.Length]);
        var p = command.Parameters;
        foreach (var record in records)
        {
            var e = record.Entry;
            p.Add(Text(e.TenantId));
            p.Add(new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint, TypedValue = record.Sequence });
            p.Add(Text(e.Id));
            p.Add(new NpgsqlParameter<DateTime> { NpgsqlDbType = NpgsqlDbType.TimestampTz, TypedValue = e.Timestamp.UtcDateTime });
            p.Add(Text(e.AgentId));
            p.Add(Text(e.UserId));
            p.Add(Text(e.SessionId));
            p.Add(Text(e.TokenId));
            p.Add(Text(e.Kind));
            p.Add(Text(e.Server));
            p.Add(Text(e.Tool));
            p.Add(Text(e.Arguments));
            p.Add(Text(e.ArgumentsHash));
            p.Add(Text(e.Decision));
            p.Add(Text(e.Code));
            p.Add(Text(e.Outcome));
            p.Add(Text(e.ErrorType));
            p.Add(Text(e.ResultHash));
            p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Bigint, Value = e.ResultSize is { } size ? size : DBNull.Value });
            p.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Double, Value = e.LatencyMs is { } latency ? latency : DBNull.Value });
            p.Add(Text(e.ConfirmationId));
            p.Add(Text(e.Silo));
            p.Add(Text(e.Detail));
            p.Add(Text(record.PreviousHash));
            p.Add(Text(record.Hash));
        }

        return command;

        static NpgsqlParameter Text(string? value) => new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };
    }

    private static NpgsqlBatchCommand MoveHeads(Dictionary<string, ChainLink> heads)
    {
        var headTenants = new string[heads.Count];
        var headSequences = new long[heads.Count];
        var headHashes = new string[heads.Count];
        var h = 0;
        foreach (var (tenantId, head) in heads)
        {
            headTenants[h] = tenantId;
            headSequences[h] = head.Sequence;
            headHashes[h] = head.Hash;
            h++;
        }

        return Command(MoveHeadsSql, Array(headTenants, NpgsqlDbType.Text), Array(headSequences, NpgsqlDbType.Bigint), Array(headHashes, NpgsqlDbType.Text));
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
        await using var command = _dataSource.CreateCommand();
        var where = AuditFilter.Where(command, AuditDialect.PostgreSql, query, after);
        // One row more than the page tells whether another page exists without a second query.
        command.CommandText = $"SELECT {AuditRows.Columns} FROM audit_records {where} {AuditRows.NewestFirst} LIMIT @limit";
        command.Parameters.AddWithValue("@limit", limit + 1);

        return await AuditRows.ReadPageAsync(command, AuditDialect.PostgreSql, limit, cancellationToken);
    }

    public async IAsyncEnumerable<AuditRecord> ExportAsync(AuditQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (AuditFilter.MatchesNothing(query))
        {
            yield break;
        }

        await using var command = _dataSource.CreateCommand();
        // Npgsql hands rows over as they arrive, so memory stays flat however large the export.
        command.CommandText = $"SELECT {AuditRows.Columns} FROM audit_records {AuditFilter.Where(command, AuditDialect.PostgreSql, query, null)} {AuditRows.NewestFirst}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return AuditRows.Read(reader, AuditDialect.PostgreSql);
        }
    }

    public async Task<ChainVerification> VerifyAsync(string tenantId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        // One snapshot for anchor, records and head, so a purge or an append committing meanwhile cannot make an
        // intact chain look broken.
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);

        var anchor = await ReadLinkAsync(connection, transaction, SelectAnchorSql, tenantId, cancellationToken);
        var verifier = new ChainVerifier(anchor);
        await using (var command = new NpgsqlCommand(SelectChainSql, connection, transaction))
        {
            command.Parameters.Add(Value(tenantId));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (!verifier.Check(AuditRows.Read(reader, AuditDialect.PostgreSql)))
                {
                    break;
                }
            }
        }

        var head = await ReadLinkAsync(connection, transaction, SelectHeadSql, tenantId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return verifier.Finish(head);
    }

    public async Task<long> PurgeAsync(string tenantId, DateTimeOffset before, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tenantId);

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        await using (var lockCommand = new NpgsqlCommand(LockPurgeSql, connection, transaction))
        {
            lockCommand.Parameters.Add(Value(tenantId));
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }

        ChainLink? end;
        await using (var select = new NpgsqlCommand(SelectPurgeEndSql, connection, transaction))
        {
            select.Parameters.Add(Value(tenantId));
            select.Parameters.Add(Value(AuditChain.Normalize(before)));
            await using var reader = await select.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken);
            end = await reader.ReadAsync(cancellationToken) ? new ChainLink(reader.GetInt64(0), reader.GetString(1)) : null;
        }

        if (end is not { } last)
        {
            return 0;
        }

        long deleted;
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(Command(UpsertAnchorSql, Value(tenantId), Value(last.Sequence), Value(last.Hash)));
            var delete = Command(DeleteUpToSql, Value(tenantId), Value(last.Sequence));
            batch.BatchCommands.Add(delete);
            await batch.ExecuteNonQueryAsync(cancellationToken);
            deleted = delete.RecordsAffected;
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
            await using var command = _dataSource.CreateCommand("SELECT 1");
            command.CommandTimeout = 2;
            return await command.ExecuteScalarAsync(timeout.Token) is 1;
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Any failure (server down, network, authentication) means "not healthy", not an error for the caller.
            return false;
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    public void Dispose() => _dataSource.Dispose();

    private static async Task<ChainLink?> ReadLinkAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string tenantId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(Value(tenantId));
        await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SingleRow, cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new ChainLink(reader.GetInt64(0), reader.GetString(1)) : null;
    }

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    // Positional ($n) parameters: no SQL rewriting, and the statements stay prepared-statement friendly.
    private static NpgsqlParameter<T> Value<T>(T value) => new() { TypedValue = value };

    private static NpgsqlParameter<T[]> Array<T>(T[] values, NpgsqlDbType elementType) =>
        new() { TypedValue = values, NpgsqlDbType = NpgsqlDbType.Array | elementType };
}
