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
}

[GenerateSerializer, Alias("cp.SessionRecord")]
public sealed class SessionRecord
{
    [Id(0)] public SessionInfo? Info { get; set; }
}
