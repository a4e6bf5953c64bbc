using Microsoft.Extensions.DependencyInjection;
using ControlPlane.Tokens;

namespace ControlPlane.Grains.Tokens;

public sealed class AgentTokenGrain(
    [PersistentState("token", StorageNames.ControlPlane)] IPersistentState<AgentTokenRecord> state,
    [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time) : Grain, IAgentTokenGrain
{
    /// <summary>How far ahead of this grain's clock an observer's clock may be for its "expired" to be recorded.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(2);

    public async Task CreateAsync(AgentToken token)
    {
        if (state.State.Token is not null) throw new InvalidOperationException($"Token id {token.Id} is already in use.");
        if (token.Id != this.GetPrimaryKeyString()) throw new ArgumentException("Token id does not match the grain key.", nameof(token));

        state.State.Token = token;
        await state.WriteOrRetireAsync(this);
    }

    public Task<AgentToken?> GetAsync() => Task.FromResult(state.State.Token);

    public async Task<AgentToken?> RevokeAsync(DateTimeOffset at)
    {
        if (state.State.Token is not { } token) return null;
        if (token.RevokedAt is not null) return token;

        state.State.Token = token with { RevokedAt = at };
        await state.WriteOrRetireAsync(this);
        return state.State.Token;
    }

    public async Task<AgentToken?> MarkExpiredAsync(DateTimeOffset observedAt)
    {
        if (state.State.Token is not { } token) return null;
        if (token.ExpiredAt is not null || token.ExpiresAt is not { } expiresAt) return token;
        if (time.GetUtcNow() + MaxClockSkew < expiresAt) return token;

        state.State.Token = token with { ExpiredAt = observedAt };
        await state.WriteOrRetireAsync(this);
        return state.State.Token;
    }
}

[GenerateSerializer, Alias("cp.AgentTokenRecord")]
public sealed class AgentTokenRecord
{
    [Id(0)] public AgentToken? Token { get; set; }
}
