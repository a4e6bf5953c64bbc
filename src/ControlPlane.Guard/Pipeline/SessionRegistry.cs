using System.Collections.Concurrent;
using ControlPlane.Guard.Authentication;
using ControlPlane.Sessions;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Makes sure every MCP session is recorded in its grain (who it belongs to) once, the first time it
/// is used on this silo, and refuses a session id that turns up with another identity.
/// </summary>
public sealed class SessionRegistry(IGrainFactory grains, TimeProvider time, ISiloIdentity silo)
{
    private readonly ConcurrentDictionary<string, string> _opened = new(StringComparer.Ordinal);

    public int OpenCount => _opened.Count;

    public async ValueTask<bool> EnsureOpenedAsync(string sessionId, AgentIdentity agent, CancellationToken cancellationToken)
    {
        if (_opened.TryGetValue(sessionId, out var tokenId)) return tokenId == agent.Token.Id;

        var info = new SessionInfo(sessionId, agent.TenantId, agent.AgentId, agent.UserId, agent.Token.Id, time.GetUtcNow(), silo.Name);
        var accepted = await grains.GetGrain<ISessionGrain>(sessionId).OpenAsync(info).WaitAsync(cancellationToken);
        if (accepted) _opened[sessionId] = agent.Token.Id;
        return accepted;
    }

    /// <summary>Called when the MCP session ends on this silo.</summary>
    public void Forget(string sessionId) => _opened.TryRemove(sessionId, out _);
}

/// <summary>The name this silo goes by in session records and audit entries.</summary>
public interface ISiloIdentity
{
    string Name { get; }
}
