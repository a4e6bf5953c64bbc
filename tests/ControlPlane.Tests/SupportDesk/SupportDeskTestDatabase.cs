using System.Globalization;
using ControlPlane.SupportDesk;
using Microsoft.Data.Sqlite;

namespace ControlPlane.Tests.SupportDesk;

/// <summary>A support-desk database in its own temp directory, deleted (with WAL side files) on dispose.</summary>
internal sealed class SupportDeskTestDatabase : IDisposable
{
    private readonly string _directory;

    public SupportDeskTestDatabase()
    {
        _directory = Path.Combine(Path.GetTempPath(), "controlplane-supportdesk-" + Guid.NewGuid().ToString("N"));
        DatabasePath = Path.Combine(_directory, "support-desk.db");
        Database = new SupportDeskDatabase(DatabasePath);
    }

    public string DatabasePath { get; }

    public SupportDeskDatabase Database { get; }

    public static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token;

    public async Task<long> CountAsync(string table)
    {
        // Table names are test constants, not input.
        return Convert.ToInt64(await ScalarAsync($"SELECT COUNT(*) FROM {table};"), CultureInfo.InvariantCulture);
    }

    public async Task<object?> ScalarAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return await command.ExecuteScalarAsync();
    }

    /// <summary>All rows of a query as ordered (column, value) lists; values rendered invariantly, null as null.</summary>
    public async Task<List<List<(string Column, string? Value)>>> QueryAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        var rows = new List<List<(string, string?)>>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var row = new List<(string, string?)>(reader.FieldCount);
            for (var i = 0; i < reader.FieldCount; i++)
            {
                row.Add((reader.GetName(i), reader.IsDBNull(i) ? null : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture)));
            }

            rows.Add(row);
        }

        return rows;
    }

    public void Dispose()
    {
        Database.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        // Unpooled so the test never keeps the file open after it is done.
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync();
        return connection;
    }
}
