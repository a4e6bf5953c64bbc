using ControlPlane.Tenants;

namespace ControlPlane.Grains.Tenants;

public sealed class TenantDirectoryGrain(
    [PersistentState("tenants", StorageNames.ControlPlane)] IPersistentState<TenantDirectoryRecord> state) : Grain, ITenantDirectoryGrain
{
    public async Task<(TenantInfo Tenant, bool Created)> CreateAsync(string id, string name, DateTimeOffset at)
    {
        if (!Identifiers.IsValidTenantId(id)) throw new ArgumentException("Tenant ids match ^[a-z0-9][a-z0-9-]{0,62}$.", nameof(id));
        if (state.State.Tenants.TryGetValue(id, out var existing)) return (existing, false);

        var tenant = new TenantInfo(id, string.IsNullOrWhiteSpace(name) ? id : name.Trim(), at);
        state.State.Tenants[id] = tenant;
        await state.WriteOrRetireAsync(this);

        return (tenant, true);
    }

    public Task<TenantInfo?> GetAsync(string id) =>
        Task.FromResult(state.State.Tenants.GetValueOrDefault(id));

    public Task<TenantInfo[]> ListAsync() =>
        Task.FromResult(state.State.Tenants.Values.OrderBy(t => t.Id, StringComparer.Ordinal).ToArray());
}

[GenerateSerializer, Alias("cp.TenantDirectoryRecord")]
public sealed class TenantDirectoryRecord
{
    [Id(0)] public Dictionary<string, TenantInfo> Tenants { get; set; } = new(StringComparer.Ordinal);
}
