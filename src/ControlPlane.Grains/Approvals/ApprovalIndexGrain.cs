using ControlPlane.Approvals;

namespace ControlPlane.Grains.Approvals;

public sealed class ApprovalIndexGrain(
    [PersistentState("approvals", StorageNames.ControlPlane)] IPersistentState<ApprovalIndexRecord> state) : Grain, IApprovalIndexGrain
{
    private const int Limit = 10_000;

    public async Task AddAsync(string approvalId, string dedupKey)
    {
        if (state.State.Open.Count >= Limit) throw new InvalidOperationException("Too many open approvals for this tenant; decide or let some expire first.");
        state.State.Open[approvalId] = dedupKey;
        await state.WriteOrRetireAsync(this);
    }

    public async Task RemoveAsync(string approvalId)
    {
        if (state.State.Open.Remove(approvalId)) await state.WriteOrRetireAsync(this);
    }

    public Task<string[]> ListAsync() => Task.FromResult(state.State.Open.Keys.ToArray());

    public Task<string?> FindOpenAsync(string dedupKey) =>
        Task.FromResult<string?>(state.State.Open.FirstOrDefault(p => p.Value == dedupKey).Key);
}

[GenerateSerializer, Alias("cp.ApprovalIndexRecord")]
public sealed class ApprovalIndexRecord
{
    [Id(0)] public Dictionary<string, string> Open { get; set; } = new(StringComparer.Ordinal);
}
