using ControlPlane.Tenants;
using ControlPlane.Tokens;

namespace ControlPlane.Grains.Tenants;

public sealed class TenantGrain(
    [PersistentState("tenant", StorageNames.ControlPlane)] IPersistentState<TenantRecord> state) : Grain, ITenantGrain
{
    public async Task AddTokenAsync(AgentTokenInfo token)
    {
        if (token.TenantId != this.GetPrimaryKeyString()) throw new ArgumentException("The token belongs to another tenant.", nameof(token));

        state.State.Tokens[token.Id] = token;
        state.State.Agents.Add(token.AgentId);
        if (token.UserId is not null) state.State.Users.Add(token.UserId);
        await state.WriteOrRetireAsync(this);
    }

    public async Task MarkTokenRevokedAsync(string tokenId, DateTimeOffset at)
    {
        if (state.State.Tokens.TryGetValue(tokenId, out var token) && token.RevokedAt is null)
        {
            state.State.Tokens[tokenId] = token with { RevokedAt = at };
            await state.WriteOrRetireAsync(this);
        }
    }

    public Task<AgentTokenInfo[]> ListTokensAsync() =>
        Task.FromResult(state.State.Tokens.Values.OrderBy(t => t.CreatedAt).ToArray());

    public Task<string[]> ListAgentsAsync() =>
        Task.FromResult(state.State.Agents.Order(StringComparer.Ordinal).ToArray());

    public Task<int?> GetAuditRetentionAsync() => Task.FromResult(state.State.AuditRetentionDays);

    public async Task SetAuditRetentionAsync(int? days)
    {
        if (days is < 1 or > 3650) throw new ArgumentOutOfRangeException(nameof(days), "Retention is 1 to 3650 days.");
        state.State.AuditRetentionDays = days;
        await state.WriteOrRetireAsync(this);
    }

    public Task<string[]> ListUsersAsync() =>
        Task.FromResult(state.State.Users.Order(StringComparer.Ordinal).ToArray());
}

[GenerateSerializer, Alias("cp.TenantRecord")]
public sealed class TenantRecord
{
    [Id(0)] public Dictionary<string, AgentTokenInfo> Tokens { get; set; } = new(StringComparer.Ordinal);
    [Id(1)] public HashSet<string> Agents { get; set; } = new(StringComparer.Ordinal);
    [Id(2)] public HashSet<string> Users { get; set; } = new(StringComparer.Ordinal);
    [Id(3)] public int? AuditRetentionDays { get; set; }
}
