using ControlPlane.Grains.Storage;

namespace ControlPlane.Grains.Sessions;

/// <summary>Session record retention on the embedded SQLite grain store.</summary>
internal sealed class SqliteSessionRecordSweeper(SqliteGrainStorage storage) : ISessionRecordSweeper
{
    private const int BatchSize = 5_000;

    public Task<long> DeleteUnwrittenSinceAsync(DateTimeOffset cutoff, CancellationToken cancellationToken) =>
        storage.DeleteUnwrittenSinceAsync(ISessionRecordSweeper.StateName, cutoff, BatchSize, cancellationToken);
}
