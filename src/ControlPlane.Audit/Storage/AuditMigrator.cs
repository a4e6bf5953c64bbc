using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Audit.Storage;

internal enum AuditDialect
{
    Sqlite,
    PostgreSql,
}

/// <summary>
/// Applies the embedded scripts under ops/sql/audit/&lt;dialect&gt;/ (NNN_name.sql, in version order) that the
/// database has not recorded yet. Everything runs in one transaction that first takes a database-wide lock,
/// so silos that start together apply each script exactly once and never see a half-built schema.
/// </summary>
internal static class AuditMigrator
{
    // Any fixed key works; advisory locks are scoped to the current database, so it only has to be distinct
    // from other advisory locks that the same database might use.
    private const long PostgresLockKey = 0x4350_4155_4449_5401; // "CPAUDIT" + 1

    private const string SqliteBootstrapSql = """
        CREATE TABLE IF NOT EXISTS audit_schema_migrations (
            version    INTEGER NOT NULL PRIMARY KEY,
            applied_at TEXT    NOT NULL
        );
        """;

    private const string PostgresBootstrapSql = """
        CREATE TABLE IF NOT EXISTS audit_schema_migrations (
            version    integer     NOT NULL PRIMARY KEY,
            applied_at timestamptz NOT NULL
        );
        """;

    private const string SqliteRecordSql =
        "INSERT INTO audit_schema_migrations (version, applied_at) VALUES (@version, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));";

    private const string PostgresRecordSql =
        "INSERT INTO audit_schema_migrations (version, applied_at) VALUES (@version, now());";

    public static async Task MigrateAsync(DbConnection connection, AuditDialect dialect, CancellationToken cancellationToken)
    {
        var scripts = LoadScripts(dialect);

        await using var transaction = await BeginLockedAsync(connection, dialect, cancellationToken);
        await ExecuteAsync(connection, transaction, dialect == AuditDialect.Sqlite ? SqliteBootstrapSql : PostgresBootstrapSql, null, cancellationToken);

        var applied = new HashSet<int>();
        await using (var command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = "SELECT version FROM audit_schema_migrations;";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                applied.Add(Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture));
            }
        }

        foreach (var (version, sql) in scripts)
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await ExecuteAsync(connection, transaction, sql, null, cancellationToken);
            await ExecuteAsync(connection, transaction, dialect == AuditDialect.Sqlite ? SqliteRecordSql : PostgresRecordSql, version, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The dialect's scripts, ordered by the version number that prefixes each file name.</summary>
    internal static IReadOnlyList<(int Version, string Sql)> LoadScripts(AuditDialect dialect)
    {
        var assembly = typeof(AuditMigrator).Assembly;
        // The csproj links ops/sql/audit/** under Migrations/, so the manifest names are <root namespace>.Migrations.<dialect>.<file>.
        var prefix = $".Migrations.{(dialect == AuditDialect.Sqlite ? "sqlite" : "postgresql")}.";
        var scripts = new List<(int Version, string Sql)>();
        foreach (var name in assembly.GetManifestResourceNames())
        {
            var at = name.IndexOf(prefix, StringComparison.Ordinal);
            if (at < 0 || !name.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var file = name[(at + prefix.Length)..];
            var digits = file.IndexOf('_', StringComparison.Ordinal);
            if (digits <= 0 || !int.TryParse(file.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            {
                throw new InvalidOperationException($"Audit migration '{file}' is not named NNN_description.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(name)
                ?? throw new InvalidOperationException($"Audit migration resource '{name}' is missing.");
            using var reader = new StreamReader(stream);
            scripts.Add((version, reader.ReadToEnd()));
        }

        if (scripts.Count == 0)
        {
            throw new InvalidOperationException($"No embedded audit migrations for {dialect}.");
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < scripts.Count; i++)
        {
            if (scripts[i].Version == scripts[i - 1].Version)
            {
                throw new InvalidOperationException($"Two audit migrations for {dialect} share version {scripts[i].Version}.");
            }
        }

        return scripts;
    }

    private static async Task<DbTransaction> BeginLockedAsync(DbConnection connection, AuditDialect dialect, CancellationToken cancellationToken)
    {
        if (dialect == AuditDialect.Sqlite)
        {
            // BEGIN IMMEDIATE takes the database's write lock up front; a second process waits (busy_timeout)
            // and then finds the versions already recorded.
            return ((SqliteConnection)connection).BeginTransaction(deferred: false);
        }

        var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "SELECT pg_advisory_xact_lock(@key);";
            var key = command.CreateParameter();
            key.ParameterName = "@key";
            key.Value = PostgresLockKey;
            command.Parameters.Add(key);
            await command.ExecuteNonQueryAsync(cancellationToken);
            return transaction;
        }
        catch
        {
            await transaction.DisposeAsync();
            throw;
        }
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction transaction, string sql, int? version, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        if (version is { } value)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@version";
            parameter.Value = value;
            command.Parameters.Add(parameter);
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
