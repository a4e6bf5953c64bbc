using Orleans;
using Orleans.Runtime;

namespace ControlPlane.Tests.Storage;

// [GenerateSerializer] is required even though the JSON storage serializer never uses Orleans codecs: since
// Orleans 10.4 the silo's JSON binder only resolves "$type" names on the type allow-list, so without it the state
// is written fine but cannot be read back after reactivation.
[GenerateSerializer]
public sealed class CounterState
{
    [Id(0)]
    public int Value { get; set; }

    [Id(1)]
    public string? Note { get; set; }
}

public interface ICounterTestGrain : IGrainWithStringKey
{
    Task<int> Increment();

    Task<int> Get();
}

// No storage name on [PersistentState]: the grain must land on whatever provider is registered as the default.
public sealed class CounterTestGrain([PersistentState("counter")] IPersistentState<CounterState> counter) : Grain, ICounterTestGrain
{
    public async Task<int> Increment()
    {
        counter.State.Value++;
        await counter.WriteStateAsync();
        return counter.State.Value;
    }

    public Task<int> Get() => Task.FromResult(counter.State.Value);
}
