using ControlPlane.Upstreams;

namespace ControlPlane.Grains.Upstreams;

public sealed class UpstreamRegistryGrain(
    [PersistentState("upstreams", StorageNames.ControlPlane)] IPersistentState<UpstreamRegistryRecord> state) : Grain, IUpstreamRegistryGrain
{
    public async Task<bool> RegisterAsync(UpstreamServerRegistration registration)
    {
        var created = !state.State.Servers.ContainsKey(registration.Id);
        state.State.Servers[registration.Id] = registration;
        state.State.Version++;
        await state.WriteOrRetireAsync(this);
        return created;
    }

    public async Task<UpstreamServerRegistration?> RemoveAsync(string id)
    {
        if (!state.State.Servers.Remove(id, out var removed)) return null;
        state.State.Version++;
        await state.WriteOrRetireAsync(this);
        return removed;
    }

    public Task<UpstreamRegistrySnapshot> GetAsync() =>
        Task.FromResult(new UpstreamRegistrySnapshot(state.State.Version, [.. state.State.Servers.Values.OrderBy(s => s.Id, StringComparer.Ordinal)]));

    public Task<long> GetVersionAsync() => Task.FromResult(state.State.Version);
}

[GenerateSerializer, Alias("cp.UpstreamRegistryRecord")]
public sealed class UpstreamRegistryRecord
{
    [Id(0)] public long Version { get; set; }

    [Id(1)] public Dictionary<string, UpstreamServerRegistration> Servers { get; set; } = new(StringComparer.Ordinal);
}
