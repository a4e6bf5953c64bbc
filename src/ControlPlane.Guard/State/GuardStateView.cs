using ControlPlane.GuardState;

namespace ControlPlane.Guard.State;

/// <summary>
/// One version of the guard state as the hot path reads it: kill switches indexed, revocations as a set, policy
/// compiled. Immutable, so a call that pins one view at its start judges every step against the same state, whatever
/// lands while it runs.
/// </summary>
public sealed class GuardStateView
{
    private readonly HashSet<string> _revoked;

    internal GuardStateView(GuardStateSnapshot snapshot)
    {
        Snapshot = snapshot;
        Kills = new KillIndex(snapshot.KillSwitches);
        _revoked = snapshot.RevokedTokens.Select(r => r.TokenId).ToHashSet(StringComparer.Ordinal);
        Policy = new GuardPolicy(snapshot);
    }

    public static GuardStateView Empty { get; } = new(GuardStateSnapshot.Empty);

    public GuardStateSnapshot Snapshot { get; }

    public long Version => Snapshot.Version;

    public KillIndex Kills { get; }

    public GuardPolicy Policy { get; }

    public bool IsRevoked(string tokenId) => _revoked.Count > 0 && _revoked.Contains(tokenId);
}
