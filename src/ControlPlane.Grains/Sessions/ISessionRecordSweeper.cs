namespace ControlPlane.Grains.Sessions;

/// <summary>
/// Deletes session records straight from the grain store, by when each was last written: the store is the only place
/// that knows every session, and a record is small enough that a grain per record would cost more than it deletes.
/// </summary>
public interface ISessionRecordSweeper
{
    /// <summary>The state name session grains persist under (<c>[PersistentState]</c>).</summary>
    public const string StateName = "session";

    /// <summary>Deletes every session record last written before <paramref name="cutoff"/>; returns how many.</summary>
    Task<long> DeleteUnwrittenSinceAsync(DateTimeOffset cutoff, CancellationToken cancellationToken);
}
