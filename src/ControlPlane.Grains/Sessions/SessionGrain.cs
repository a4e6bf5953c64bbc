using ControlPlane.Sessions;

namespace ControlPlane.Grains.Sessions;

public sealed class SessionGrain(
    [PersistentState(ISessionRecordSweeper.StateName, StorageNames.ControlPlane)] IPersistentState<SessionRecord> state,
    TimeProvider time) : Grain, ISessionGrain
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
        state.State.WrittenAt = time.GetUtcNow();
        await state.WriteOrRetireAsync(this);
        return true;
    }

    public Task<SessionInfo?> GetAsync() => Task.FromResult(state.State.Info);

    public async Task<string?> ResumeAsync(string tokenId, string? endpoint)
    {
        DeactivateOnIdle();
        // Bound to the token, as the SDK binds a live session: another token of the same agent opens its own session.
        var info = state.State.Info;
        var resumable = state.State.ClosedAt is null
                        && info is not null
                        && info.TokenId == tokenId
                        && string.Equals(info.Endpoint, endpoint, StringComparison.Ordinal);
        if (!resumable) return null;

        var now = time.GetUtcNow();
        // At most hourly: resumes happen on every request after an idle minute, and most should stay read-only.
        if (state.State.WrittenAt is not { } written || now - written >= ISessionGrain.RecordRefreshInterval)
        {
            state.State.WrittenAt = now;
            try
            {
                await state.WriteOrRetireAsync(this);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A failed refresh only leaves retention an older write to go by (the activation is retired and
                // reloads); the session itself is still good to resume.
            }
        }

        return info!.Handshake;
    }

    public async Task TouchAsync(string tokenId)
    {
        DeactivateOnIdle();
        if (state.State.Info?.TokenId != tokenId || state.State.ClosedAt is not null) return;
        state.State.WrittenAt = time.GetUtcNow();
        await state.WriteOrRetireAsync(this);
    }

    public async Task<bool> CloseAsync(string tokenId, DateTimeOffset closedAt)
    {
        DeactivateOnIdle();
        if (state.State.Info?.TokenId != tokenId) return false;
        if (state.State.ClosedAt is not null) return true;
        state.State.ClosedAt = closedAt;
        state.State.WrittenAt = time.GetUtcNow();
        await state.WriteOrRetireAsync(this);
        return true;
    }
}

[GenerateSerializer, Alias("cp.SessionRecord")]
public sealed class SessionRecord
{
    [Id(0)] public SessionInfo? Info { get; set; }

    [Id(1)] public DateTimeOffset? ClosedAt { get; set; }

    /// <summary>When this record was last written (null in records from before it was kept).</summary>
    [Id(2)] public DateTimeOffset? WrittenAt { get; set; }
}
