using ControlPlane.Upstreams;

namespace ControlPlane.Grains.Upstreams;

/// <summary>
/// Every upstream registration of the cluster, keyed by <see cref="UpstreamServerRegistration.Key"/>: one global
/// registration per server id and one per tenant beside it.
/// </summary>
public sealed class UpstreamRegistryGrain(
    [PersistentState("upstreams", StorageNames.ControlPlane)] IPersistentState<UpstreamRegistryRecord> state) : Grain, IUpstreamRegistryGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Registrations stored before a server id could carry one per tenant were keyed by the id alone.
        if (state.State.Servers.Any(kv => kv.Key != kv.Value.Key))
        {
            state.State.Servers = state.State.Servers.Values.ToDictionary(r => r.Key, StringComparer.Ordinal);
        }

        return Task.CompletedTask;
    }

    public async Task<bool> RegisterAsync(UpstreamServerRegistration registration)
    {
        var created = !state.State.Servers.ContainsKey(registration.Key);
        state.State.Servers[registration.Key] = registration;
        state.State.Version++;
        await state.WriteOrRetireAsync(this);
        return created;
    }

    public async Task<UpstreamServerRegistration?> RemoveAsync(string id, string? tenantId)
    {
        if (!state.State.Servers.Remove(UpstreamServerRegistration.KeyOf(id, tenantId), out var removed)) return null;
        state.State.Version++;
        await state.WriteOrRetireAsync(this);
        return removed;
    }

    public Task<UpstreamRegistrySnapshot> GetAsync() =>
        Task.FromResult(new UpstreamRegistrySnapshot(state.State.Version, [.. state.State.Servers.Values.OrderBy(s => s.Id, StringComparer.Ordinal).ThenBy(s => s.TenantId, StringComparer.Ordinal)]));

    public Task<long> GetVersionAsync() => Task.FromResult(state.State.Version);
}

[GenerateSerializer, Alias("cp.UpstreamRegistryRecord")]
public sealed class UpstreamRegistryRecord
{
    [Id(0)] public long Version { get; set; }

    [Id(1)] public Dictionary<string, UpstreamServerRegistration> Servers { get; set; } = new(StringComparer.Ordinal);
}
