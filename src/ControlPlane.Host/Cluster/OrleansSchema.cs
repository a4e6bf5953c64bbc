using System.Globalization;
using Npgsql;

namespace ControlPlane.Host.Cluster;

/// <summary>
/// Orleans' own PostgreSQL scripts (ops/sql/orleans/postgresql, embedded in this assembly) applied in order,
/// each once. Orleans' scripts are not idempotent (plain CREATE TABLE and INSERT), so what has been applied is
/// recorded in <c>controlplane_orleans_schema</c>, and everything happens in one transaction under an advisory
/// lock: silos that start together apply each script exactly once and never see half a schema.
/// </summary>
internal static class OrleansSchema
{
    private const long LockKey = 0x4350_4F52_4C45_414E; // "CPORLEAN"

    private const string BootstrapSql = """
        CREATE TABLE IF NOT EXISTS controlplane_orleans_schema (
            version    integer     NOT NULL PRIMARY KEY,
            script     text        NOT NULL,
            applied_at timestamptz NOT NULL
        );
        """;

    /// <summary>Applies every script the database has not recorded; returns the names of those it applied.</summary>
    public static async Task<IReadOnlyList<string>> MigrateAsync(string connectionString, CancellationToken cancellationToken)
    {
        var scripts = Scripts.Value;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({LockKey});", cancellationToken);
        await ExecuteAsync(connection, transaction, BootstrapSql, cancellationToken);

        var applied = await AppliedVersionsAsync(connection, transaction, cancellationToken);
        var done = new List<string>();
        foreach (var script in scripts)
        {
            if (applied.Contains(script.Version)) continue;
            await ExecuteAsync(connection, transaction, script.Sql, cancellationToken);
            await using var record = new NpgsqlCommand("INSERT INTO controlplane_orleans_schema (version, script, applied_at) VALUES (@version, @script, now());", connection, transaction);
            record.Parameters.AddWithValue("version", script.Version);
            record.Parameters.AddWithValue("script", script.Name);
            await record.ExecuteNonQueryAsync(cancellationToken);
            done.Add(script.Name);
        }

        await transaction.CommitAsync(cancellationToken);
        return done;
    }

    /// <summary>The scripts this build expects that the database has not recorded (empty when the schema is complete).</summary>
    public static async Task<IReadOnlyList<string>> MissingAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('controlplane_orleans_schema') IS NOT NULL;", connection))
        {
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken))!) return [.. Scripts.Value.Select(s => s.Name)];
        }

        var applied = await AppliedVersionsAsync(connection, null, cancellationToken);
        return [.. Scripts.Value.Where(s => !applied.Contains(s.Version)).Select(s => s.Name)];
    }

    private static async Task<HashSet<int>> AppliedVersionsAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        var applied = new HashSet<int>();
        await using var command = new NpgsqlCommand("SELECT version FROM controlplane_orleans_schema;", connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) applied.Add(reader.GetInt32(0));
        return applied;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed record Script(int Version, string Name, string Sql);

    private static readonly Lazy<IReadOnlyList<Script>> Scripts = new(Load);

    /// <summary>The csproj links the scripts under OrleansSchema/: resource names end in <c>.OrleansSchema.NNN_name.sql</c>.</summary>
    private static IReadOnlyList<Script> Load()
    {
        const string Marker = ".OrleansSchema.";
        var assembly = typeof(OrleansSchema).Assembly;
        var scripts = new List<Script>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var at = resource.IndexOf(Marker, StringComparison.Ordinal);
            if (at < 0 || !resource.EndsWith(".sql", StringComparison.Ordinal)) continue;
            var name = resource[(at + Marker.Length)..];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            {
                throw new InvalidOperationException($"Orleans schema script '{name}' is not named NNN_name.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add(new Script(version, name, reader.ReadToEnd()));
        }

        if (scripts.Count == 0) throw new InvalidOperationException("No Orleans schema scripts are embedded in ControlPlane.Host.");
        scripts.Sort(static (a, b) => a.Version.CompareTo(b.Version));
        return scripts;
    }
}
