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

    public long Version => _view.Version;

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

    public long Apply(GuardStateSnapshot snapshot)
    {
        IReadOnlyList<KillSwitch> added;
        KillIndex index;
        lock (_applyLock)
        {
            var current = _view;
            Confirm();
            _loaded = true;
            if (snapshot.Version <= current.Snapshot.Version) return current.Snapshot.Version;

            var view = new GuardStateView(snapshot);
            index = view.Kills;
            _view = view;
            added = [.. snapshot.KillSwitches.Where(s => !current.Kills.Contains(s.Target.Key))];
        }

        if (added.Count > 0) SwitchesAdded?.Invoke(index, added);
        return snapshot.Version;
    }

    /// <summary>Records that the owner grain confirmed the current version just now.</summary>
    public void Confirm() => Volatile.Write(ref _confirmedAt, _time.GetTimestamp());
}
