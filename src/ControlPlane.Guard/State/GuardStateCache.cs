using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.State;

/// <summary>
/// This silo's in-memory copy of the cluster's guard state: the only thing the hot path reads to
/// decide kills and revocations. Updated by pushes and by the synchronizer's polls.
/// </summary>
public sealed class GuardStateCache : IGuardStateListener
{
    private readonly TimeProvider _time;
    private readonly long _staleAfterTicks;
    private readonly object _applyLock = new();
    private volatile GuardStateView _view = GuardStateView.Empty;
    private long _confirmedAt;
    private volatile bool _loaded;

    public GuardStateCache(TimeProvider time, IOptions<GuardStateOptions> options)
    {
        _time = time;
        _staleAfterTicks = (long)(options.Value.StaleAfter.TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>Raised after a snapshot with new kill switches is applied, with the switches it added.</summary>
    public event Action<KillIndex, IReadOnlyList<KillSwitch>>? SwitchesAdded;

    /// <summary>
    /// Raised after a snapshot changed what tools/list shows or advertises for some servers (a mode, a classification,
    /// a projection or a schema override), with their ids: connected clients must list again, or hold a stale schema.
    /// </summary>
    public event Action<IReadOnlyList<string>>? ToolPolicyChanged;

    public long Version => _view.Version;

    /// <summary>The number and stamp of the state held, to compare with the owner's.</summary>
    public GuardStateVersion Id => _view.Snapshot.Id;

    /// <summary>The state in force now; a call pins it once and reads nothing else (see <see cref="GuardStateView"/>).</summary>
    public GuardStateView Current => _view;

    /// <summary>True once a snapshot has been loaded from the owner grain since this silo started.</summary>
    public bool IsLoaded => _loaded;

    public KillIndex Kills => _view.Kills;

    public GuardPolicy Policy => _view.Policy;

    public IReadOnlyList<KillSwitch> ActiveSwitches => _view.Snapshot.KillSwitches;

    public bool IsRevoked(string tokenId) => _view.IsRevoked(tokenId);

    /// <summary>True while the state was confirmed against its owner recently enough to act on.</summary>
    public bool IsFresh => _loaded && _time.GetTimestamp() - Volatile.Read(ref _confirmedAt) <= _staleAfterTicks;

    public TimeSpan SinceConfirmed => _time.GetElapsedTime(Volatile.Read(ref _confirmedAt));

    /// <summary>
    /// Applies a pushed or polled snapshot when it is newer, or of the same number with another stamp (a state the
    /// store never kept, which this silo must not go on enforcing or missing). An older one is ignored: pushes can
    /// arrive out of order.
    /// </summary>
    public long Apply(GuardStateSnapshot snapshot) => Apply(snapshot, authoritative: false);

    /// <summary>
    /// Applies the owner's current state whatever its number: for a poll that found the owner holding a state older
    /// than this silo's (this silo kept one the store never did) and confirmed it still holds it.
    /// </summary>
    public long Replace(GuardStateSnapshot snapshot) => Apply(snapshot, authoritative: true);

    private long Apply(GuardStateSnapshot snapshot, bool authoritative)
    {
        IReadOnlyList<KillSwitch> added;
        IReadOnlyList<string> policyChanged;
        KillIndex index;
        lock (_applyLock)
        {
            var current = _view;
            Confirm();
            _loaded = true;
            var held = current.Snapshot;
            var differs = snapshot.Version != held.Version || snapshot.Stamp != held.Stamp;
            if (!differs || (!authoritative && snapshot.Version < held.Version)) return held.Version;

            var view = new GuardStateView(snapshot);
            index = view.Kills;
            _view = view;
            added = [.. snapshot.KillSwitches.Where(s => !current.Kills.Contains(s.Target.Key))];
            var changed = ToolPolicyServers(held);
            changed.SymmetricExceptWith(ToolPolicyServers(snapshot));
            policyChanged = [.. changed.Select(c => c.Server).Distinct(StringComparer.Ordinal)];
        }

        if (added.Count > 0) SwitchesAdded?.Invoke(index, added);
        if (policyChanged.Count > 0) ToolPolicyChanged?.Invoke(policyChanged);
        return snapshot.Version;
    }

    /// <summary>Each tool-policy entry as (server, key and when it was set): an entry set again is a change.</summary>
    private static HashSet<(string Server, string Entry)> ToolPolicyServers(GuardStateSnapshot snapshot) =>
    [
        .. (snapshot.ServerModes ?? []).Select(m => (m.ServerId, m.Key + "@" + m.SetAt.UtcTicks)),
        .. (snapshot.ClassificationOverrides ?? []).Select(o => (o.ServerId, o.Key + "@" + o.SetAt.UtcTicks)),
        .. (snapshot.Projections ?? []).Select(p => (p.ServerId, p.Key + "@" + p.SetAt.UtcTicks)),
        .. (snapshot.SchemaOverrides ?? []).Select(o => (o.ServerId, o.Key + "@" + o.SetAt.UtcTicks)),
    ];

    public GuardStateHeld Describe() => new(Id, _loaded, IsFresh, SinceConfirmed.TotalSeconds);

    /// <summary>Records that the owner grain confirmed the current version just now.</summary>
    public void Confirm() => Volatile.Write(ref _confirmedAt, _time.GetTimestamp());
}
