using ControlPlane.Grains.Sessions;
using ControlPlane.Grains.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>
/// What a grain store does to the grain states a test names: everything as usual, or failing the way an outage of
/// the database does. Shared by every silo of a test, so one switch takes the whole cluster's store down.
/// </summary>
public sealed class StorageFaults
{
    /// <summary>Grain state names (as <c>[PersistentState]</c> names them) the faults apply to; empty for every state.</summary>
    public HashSet<string> StateNames { get; } = new(StringComparer.Ordinal);

    /// <summary>Reads and writes throw, as with the database down.</summary>
    public volatile bool Down;

    /// <summary>Writes throw; reads work.</summary>
    public volatile bool WritesFail;

    /// <summary>The next write lands in the store, then throws: a commit whose answer was lost.</summary>
    public volatile bool NextWriteLandsThenFails;

    /// <summary>The next write lands, then the store goes <see cref="Down"/> before it answers: nobody can read what it holds.</summary>
    public volatile bool NextWriteLandsThenDown;

    private int _failed;

    /// <summary>How many operations the faults made fail.</summary>
    public int Failed => Volatile.Read(ref _failed);

    internal bool Applies(string stateName) => StateNames.Count == 0 || StateNames.Contains(stateName);

    internal Exception Fail(string what)
    {
        Interlocked.Increment(ref _failed);
        return new IOException($"The grain store is down (test fault): {what}.");
    }
}

/// <summary>A grain store wrapped so that <see cref="StorageFaults"/> can fail it; otherwise the inner store does the work.</summary>
internal sealed class FaultyGrainStorage(IGrainStorage inner, StorageFaults faults) : IGrainStorage, ILifecycleParticipant<ISiloLifecycle>
{
    public IGrainStorage Inner => inner;

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (faults.Applies(stateName) && faults.Down) throw faults.Fail("read " + stateName);
        return inner.ReadStateAsync(stateName, grainId, grainState);
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (faults.Applies(stateName))
        {
            if (faults.Down || faults.WritesFail) throw faults.Fail("write " + stateName);
            if (faults.NextWriteLandsThenFails || faults.NextWriteLandsThenDown)
            {
                var down = faults.NextWriteLandsThenDown;
                faults.NextWriteLandsThenFails = faults.NextWriteLandsThenDown = false;
                await inner.WriteStateAsync(stateName, grainId, grainState);
                if (down) faults.Down = true;
                throw faults.Fail("the answer to a write of " + stateName);
            }
        }

        await inner.WriteStateAsync(stateName, grainId, grainState);
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (faults.Applies(stateName) && (faults.Down || faults.WritesFail)) throw faults.Fail("clear " + stateName);
        return inner.ClearStateAsync(stateName, grainId, grainState);
    }

    public void Participate(ISiloLifecycle lifecycle)
    {
        if (inner is ILifecycleParticipant<ISiloLifecycle> participant) participant.Participate(lifecycle);
    }
}

internal static class StorageFaultsServiceCollectionExtensions
{
    /// <summary>
    /// Wraps the grain store registered under <paramref name="name"/> so that <paramref name="faults"/> can fail it.
    /// Call after the store is registered (AddControlPlaneGrains); the SQLite session sweeper keeps the inner store.
    /// </summary>
    public static IServiceCollection AddStorageFaults(this IServiceCollection services, string name, StorageFaults faults)
    {
        var original = services.Last(d => d.ServiceType == typeof(IGrainStorage) && d.IsKeyedService && Equals(d.ServiceKey, name));
        var create = original.KeyedImplementationFactory
            ?? throw new InvalidOperationException($"The grain store '{name}' is not registered with a factory.");
        services.Remove(original);
        services.AddKeyedSingleton<IGrainStorage>(name, (sp, key) => new FaultyGrainStorage((IGrainStorage)create(sp, key), faults));
        services.AddSingleton<ISessionRecordSweeper>(sp =>
            new SqliteSessionRecordSweeper((SqliteGrainStorage)((FaultyGrainStorage)sp.GetRequiredKeyedService<IGrainStorage>(name)).Inner));
        return services;
    }
}
