using ControlPlane.Sessions;

namespace ControlPlane.Grains.Sessions;

public sealed class SessionGrain(
    [PersistentState("session", StorageNames.ControlPlane)] IPersistentState<SessionRecord> state) : Grain, ISessionGrain
{
    public async Task<bool> OpenAsync(SessionInfo info)
    {
        // Each silo asks once per session and remembers the answer (SessionRegistry), so an idle session would
        // otherwise keep an activation alive on its silo for nothing: the record is durable, the grain can go.
        DeactivateOnIdle();
        if (state.State.Info is { } known)
        {
            return known.TenantId == info.TenantId && known.AgentId == info.AgentId && known.UserId == info.UserId;
        }

        state.State.Info = info;
        await state.WriteOrRetireAsync(this);
        return true;
    }

    public Task<SessionInfo?> GetAsync() => Task.FromResult(state.State.Info);

    public Task<string?> ResumeAsync(string tokenId, string? endpoint)
    {
        DeactivateOnIdle();
        // Bound to the token, as the SDK binds a live session: another token of the same agent opens its own session.
        var info = state.State.Info;
        var resumable = state.State.ClosedAt is null
                        && info is not null
                        && info.TokenId == tokenId
                        && string.Equals(info.Endpoint, endpoint, StringComparison.Ordinal);
        return Task.FromResult(resumable ? info!.Handshake : null);
    }

    public async Task<bool> CloseAsync(string tokenId, DateTimeOffset closedAt)
    {
        DeactivateOnIdle();
        if (state.State.Info?.TokenId != tokenId) return false;
        if (state.State.ClosedAt is not null) return true;
        state.State.ClosedAt = closedAt;
        await state.WriteOrRetireAsync(this);
        return true;
    }
}

[GenerateSerializer, Alias("cp.SessionRecord")]
public sealed class SessionRecord
{
    [Id(0)] public SessionInfo? Info { get; set; }

    [Id(1)] public DateTimeOffset? ClosedAt { get; set; }
}
