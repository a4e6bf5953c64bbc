using ControlPlane.Operators;

namespace ControlPlane.Grains.Operators;

public sealed class OperatorDirectoryGrain(
    [PersistentState("operators", StorageNames.ControlPlane)] IPersistentState<OperatorDirectoryRecord> state) : Grain, IOperatorDirectoryGrain
{
    public async Task UpsertAsync(OperatorAccount account)
    {
        state.State.Operators[account.Id] = account;
        await state.WriteOrRetireAsync(this);
    }

    public async Task<bool> AddFirstAsync(OperatorAccount account)
    {
        if (state.State.Operators.Count > 0) return false;
        await UpsertAsync(account);
        return true;
    }

    public Task<OperatorAccount?> GetAsync(string operatorId) =>
        Task.FromResult(state.State.Operators.GetValueOrDefault(operatorId));

    public Task<int> CountAsync() => Task.FromResult(state.State.Operators.Count);
}

[GenerateSerializer, Alias("cp.OperatorDirectoryRecord")]
public sealed class OperatorDirectoryRecord
{
    [Id(0)] public Dictionary<string, OperatorAccount> Operators { get; set; } = new(StringComparer.Ordinal);
}
