using System.Collections.Concurrent;
using ControlPlane.Guard.Authentication;
using ControlPlane.Sessions;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Makes sure every MCP session is recorded in its grain (who it belongs to) once, the first time it
/// is used on this silo, and refuses a session id that turns up with another identity. The grain also
/// keeps the session's handshake, so a session parked while idle, or whose silo went away, is resumed
/// on whichever silo its next request reaches. A session in use here has its record written again every
/// <see cref="ISessionGrain.RecordRefreshInterval"/>, off the call path, so record retention never takes it.
/// </summary>
public sealed class SessionRegistry(IGrainFactory grains, TimeProvider time, ISiloIdentity silo)
{
    private readonly ConcurrentDictionary<string, LiveSession> _opened = new(StringComparer.Ordinal);
    private long _resumed;

    /// <summary>How often a session in use here has its record refreshed (tests shorten it).</summary>
    internal TimeSpan RecordRefreshInterval { get; set; } = ISessionGrain.RecordRefreshInterval;

    /// <summary>Sessions with live state on this silo (opened or resumed here, not yet parked or closed).</summary>
    public int OpenCount => _opened.Count;

    /// <summary>Whether the session has live state on this silo.</summary>
    public bool IsLive(string sessionId) => _opened.ContainsKey(sessionId);

    /// <summary>Sessions resumed on this silo since it started (parked here before, or opened on another silo).</summary>
    public long ResumedCount => Interlocked.Read(ref _resumed);

    public async ValueTask<bool> EnsureOpenedAsync(string sessionId, AgentIdentity agent, CancellationToken cancellationToken)
    {
        if (_opened.TryGetValue(sessionId, out var live))
        {
            if (live.TokenId != agent.Token.Id) return false;
            RefreshIfDue(sessionId, live);
            return true;
        }

        return await OpenAsync(Describe(sessionId, agent), cancellationToken);
    }

    /// <summary>Records a session as its handshake completes, with what it takes to resume it elsewhere.</summary>
    public ValueTask<bool> OpenResumableAsync(string sessionId, AgentIdentity agent, string? endpoint, string? handshake, CancellationToken cancellationToken) =>
        OpenAsync(Describe(sessionId, agent) with { Endpoint = endpoint, Handshake = handshake }, cancellationToken);

    /// <summary>
    /// The handshake to rebuild a session this silo does not hold, or null when it may not be resumed by this
    /// caller on this endpoint (the client then gets 404 and starts a new session, as MCP prescribes).
    /// </summary>
    public async ValueTask<string?> ResumeAsync(string sessionId, AgentIdentity agent, string? endpoint, CancellationToken cancellationToken)
    {
        var handshake = await grains.GetGrain<ISessionGrain>(sessionId).ResumeAsync(agent.Token.Id, endpoint).WaitAsync(cancellationToken);
        if (handshake is null) return null;
        _opened[sessionId] = new LiveSession(agent.Token.Id, time.GetTimestamp());
        Interlocked.Increment(ref _resumed);
        return handshake;
    }

    /// <summary>The client ended the session: it is forgotten here and can no longer be resumed anywhere.</summary>
    public async ValueTask CloseAsync(string sessionId, AgentIdentity agent, CancellationToken cancellationToken)
    {
        if (await grains.GetGrain<ISessionGrain>(sessionId).CloseAsync(agent.Token.Id, time.GetUtcNow()).WaitAsync(cancellationToken))
        {
            Forget(sessionId);
        }
    }

    /// <summary>Called when the session's live state leaves this silo: closed, parked while idle, or the silo stopping.</summary>
    public void Forget(string sessionId) => _opened.TryRemove(sessionId, out _);

    private SessionInfo Describe(string sessionId, AgentIdentity agent) =>
        new(sessionId, agent.TenantId, agent.AgentId, agent.UserId, agent.Token.Id, time.GetUtcNow(), silo.Name);

    private async ValueTask<bool> OpenAsync(SessionInfo info, CancellationToken cancellationToken)
    {
        var accepted = await grains.GetGrain<ISessionGrain>(info.SessionId).OpenAsync(info).WaitAsync(cancellationToken);
        if (accepted) _opened[info.SessionId] = new LiveSession(info.TokenId, time.GetTimestamp());
        return accepted;
    }

    private void RefreshIfDue(string sessionId, LiveSession live)
    {
        var now = time.GetTimestamp();
        var last = Volatile.Read(ref live.RefreshedAt);
        if (time.GetElapsedTime(last, now) < RecordRefreshInterval) return;
        if (Interlocked.CompareExchange(ref live.RefreshedAt, now, last) != last) return; // another call does it
        _ = RefreshAsync(sessionId, live.TokenId);
    }

    private async Task RefreshAsync(string sessionId, string tokenId)
    {
        try
        {
            await grains.GetGrain<ISessionGrain>(sessionId).TouchAsync(tokenId);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Best effort: the next interval tries again, and the session keeps working here either way.
        }
    }

    /// <summary>A session with live state on this silo: the token it is bound to, and when its record was last refreshed.</summary>
    private sealed class LiveSession(string tokenId, long refreshedAt)
    {
        public string TokenId { get; } = tokenId;

        public long RefreshedAt = refreshedAt;
    }
}

/// <summary>The name this silo goes by in session records and audit entries.</summary>
public interface ISiloIdentity
{
    string Name { get; }
}
