using System.Data.Common;
using ControlPlane.Audit.Model;

namespace ControlPlane.Audit.Storage;

/// <summary>What both stores share about a row of audit_records: its columns, reading one back, and time in whole microseconds.</summary>
internal static class AuditRows
{
    /// <summary>Every column of audit_records in the order <see cref="Read"/> expects.</summary>
    public const string Columns =
        "tenant_id, seq, id, ts, agent_id, user_id, session_id, token_id, kind, server, tool, arguments, arguments_hash, " +
        "decision, code, outcome, error_type, result_hash, result_size, latency_ms, confirmation_id, silo, detail, prev_hash, hash";

    public const int ColumnCount = 25;

    /// <summary>Newest first; tenant and sequence make the order total, which keyset paging needs.</summary>
    public const string NewestFirst = "ORDER BY ts DESC, tenant_id, seq DESC";

    private static readonly long UnixEpochTicks = DateTimeOffset.UnixEpoch.UtcTicks;

    public static long ToUnixMicros(DateTimeOffset timestamp) => (AuditChain.Normalize(timestamp).UtcTicks - UnixEpochTicks) / 10;

    public static DateTimeOffset FromUnixMicros(long micros) => new(UnixEpochTicks + micros * 10, TimeSpan.Zero);

    /// <summary>Rejects what a store could not round-trip exactly (and so could not re-hash) before anything is written.</summary>
    public static void Validate(IReadOnlyList<AuditEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            if (entry is null)
            {
                throw new ArgumentException("The batch contains a null entry.", nameof(entries));
            }

            if (string.IsNullOrEmpty(entry.Id) || string.IsNullOrEmpty(entry.TenantId) || entry.Kind is null || entry.Decision is null || entry.Outcome is null)
            {
                throw new ArgumentException($"Audit entry '{entry.Id}' lacks a required field (id, tenant, kind, decision, outcome).", nameof(entries));
            }

            // SQLite stores NaN as NULL, so a non-finite latency would not re-hash after a round trip.
            if (entry.LatencyMs is { } latency && !double.IsFinite(latency))
            {
                throw new ArgumentException($"Audit entry '{entry.Id}' has a non-finite latency.", nameof(entries));
            }
        }
    }

    /// <summary>Reads the current row, selected with <see cref="Columns"/>.</summary>
    public static AuditRecord Read(DbDataReader reader, AuditDialect dialect)
    {
        var entry = new AuditEntry
        {
            TenantId = reader.GetString(0),
            Id = reader.GetString(2),
            Timestamp = dialect == AuditDialect.Sqlite ? FromUnixMicros(reader.GetInt64(3)) : reader.GetFieldValue<DateTimeOffset>(3),
            AgentId = Text(reader, 4),
            UserId = Text(reader, 5),
            SessionId = Text(reader, 6),
            TokenId = Text(reader, 7),
            Kind = reader.GetString(8),
            Server = Text(reader, 9),
            Tool = Text(reader, 10),
            Arguments = Text(reader, 11),
            ArgumentsHash = Text(reader, 12),
            Decision = reader.GetString(13),
            Code = Text(reader, 14),
            Outcome = reader.GetString(15),
            ErrorType = Text(reader, 16),
            ResultHash = Text(reader, 17),
            ResultSize = reader.IsDBNull(18) ? null : reader.GetInt64(18),
            LatencyMs = reader.IsDBNull(19) ? null : reader.GetDouble(19),
            ConfirmationId = Text(reader, 20),
            Silo = Text(reader, 21),
            Detail = Text(reader, 22),
        };

        return new AuditRecord(entry, reader.GetInt64(1), reader.GetString(23), reader.GetString(24));
    }

    private static string? Text(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>
    /// Reads one page newest first. The command asks for one row more than the page, which tells whether
    /// another page exists without a second query; the cursor then points after the page's last row.
    /// </summary>
    public static async Task<AuditPage> ReadPageAsync(DbCommand command, AuditDialect dialect, int limit, CancellationToken cancellationToken)
    {
        var items = new List<AuditRecord>(Math.Min(limit + 1, 128));
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                items.Add(Read(reader, dialect));
            }
        }

        if (items.Count <= limit)
        {
            return new AuditPage(items, null);
        }

        items.RemoveAt(limit);
        var last = items[^1];
        return new AuditPage(items, new AuditCursor(ToUnixMicros(last.Entry.Timestamp), last.Entry.TenantId, last.Sequence).Encode());
    }
}
