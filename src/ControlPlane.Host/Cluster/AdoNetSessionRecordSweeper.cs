using ControlPlane.Grains.Sessions;
using Npgsql;
using NpgsqlTypes;

namespace ControlPlane.Host.Cluster;

/// <summary>
/// Session record retention on Orleans' ADO.NET grain store (PostgreSQL): rows of this service's session state
/// whose <c>modifiedon</c> (UTC, set by Orleans' own write query) is older than the cutoff.
/// </summary>
internal sealed class AdoNetSessionRecordSweeper(string connectionString, string serviceId) : ISessionRecordSweeper
{
    private const int BatchSize = 5_000;

    // Orleans stores the state name as the grain type string. Bounded batches keep each delete's locks short.
    private const string DeleteSql = """
        DELETE FROM orleansstorage WHERE ctid IN (
            SELECT ctid FROM orleansstorage
            WHERE serviceid = @service AND graintypestring = @state AND modifiedon < @cutoff
            LIMIT @batch);
        """;

    public async Task<long> DeleteUnwrittenSinceAsync(DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        // modifiedon is "timestamp without time zone" holding UTC.
        var before = DateTime.SpecifyKind(cutoff.UtcDateTime, DateTimeKind.Unspecified);
        long deleted = 0;
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        while (true)
        {
            await using var command = new NpgsqlCommand(DeleteSql, connection);
            command.Parameters.AddWithValue("service", serviceId);
            command.Parameters.AddWithValue("state", ISessionRecordSweeper.StateName);
            command.Parameters.Add(new NpgsqlParameter("cutoff", NpgsqlDbType.Timestamp) { Value = before });
            command.Parameters.AddWithValue("batch", BatchSize);
            var batch = await command.ExecuteNonQueryAsync(cancellationToken);
            deleted += batch;
            if (batch < BatchSize) return deleted;
        }
    }
}
