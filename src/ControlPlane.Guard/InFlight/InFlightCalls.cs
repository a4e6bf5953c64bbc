using System.Collections.Concurrent;
using ControlPlane.Guard.State;
using ControlPlane.KillSwitches;

namespace ControlPlane.Guard.InFlight;

/// <summary>
/// The calls running on this silo right now, so that a kill switch can stop the ones it covers. The
/// SDK has no server-side API to cancel a call by id; each call gets its own linked cancellation.
/// </summary>
public sealed class InFlightCalls : IDisposable
{
    private readonly ConcurrentDictionary<long, InFlightCall> _calls = new();
    private readonly GuardStateCache _cache;
    private long _nextId;

    public InFlightCalls(GuardStateCache cache)
    {
        _cache = cache;
        _cache.SwitchesAdded += OnSwitchesAdded;
    }

    public int Count => _calls.Count;

    public InFlightCall Begin(in CallIdentity identity, CancellationToken requestAborted)
    {
        var call = new InFlightCall(this, Interlocked.Increment(ref _nextId), identity, requestAborted);
        _calls[call.Id] = call;

        // A switch may have landed between the guard's check and registration: check once more.
        if (_cache.Kills.Match(identity) is { } killSwitch) call.Kill(killSwitch);
        return call;
    }

    internal void End(InFlightCall call) => _calls.TryRemove(call.Id, out _);

    private void OnSwitchesAdded(KillIndex index, IReadOnlyList<KillSwitch> added)
    {
        foreach (var call in _calls.Values)
        {
            if (index.Match(call.Identity) is { } killSwitch) call.Kill(killSwitch);
        }
    }

    public void Dispose() => _cache.SwitchesAdded -= OnSwitchesAdded;
}

/// <summary>One running call. Dispose when the call ends.</summary>
public sealed class InFlightCall : IDisposable
{
    private readonly InFlightCalls _owner;
    private readonly CancellationTokenSource _cts;
    private KillSwitch? _killedBy;

    internal InFlightCall(InFlightCalls owner, long id, CallIdentity identity, CancellationToken requestAborted)
    {
        _owner = owner;
        Id = id;
        Identity = identity;
        _cts = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
    }

    public long Id { get; }

    public CallIdentity Identity { get; }

    /// <summary>Cancelled when the client cancels or a kill switch covers this call.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The switch that stopped this call, if one did.</summary>
    public KillSwitch? KilledBy => Volatile.Read(ref _killedBy);

    internal void Kill(KillSwitch killSwitch)
    {
        if (Interlocked.CompareExchange(ref _killedBy, killSwitch, null) is null)
        {
            try { _cts.Cancel(); } catch (ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        _owner.End(this);
        _cts.Dispose();
    }
}
