using ControlPlane.Grains.Storage;
using Microsoft.Data.Sqlite;
using Orleans.TestingHost;

namespace ControlPlane.Tests.Storage;

public sealed class SqliteGrainStorageSiloTests : IDisposable
{
    private readonly TempDatabaseFile _database = new();

    public void Dispose() => _database.Dispose();

    [Fact]
    public async Task Default_provider_persists_grain_state_across_a_cluster_restart()
    {
        var first = await StartClusterAsync();
        await using (first)
        {
            var alpha = first.Client.GetGrain<ICounterTestGrain>("alpha");
            Assert.Equal(1, await alpha.Increment());
            Assert.Equal(2, await alpha.Increment());
            Assert.Equal(3, await alpha.Increment());
            Assert.Equal(1, await first.Client.GetGrain<ICounterTestGrain>("beta").Increment());
            await first.StopAllSilosAsync();
        }

        var second = await StartClusterAsync();
        await using (second)
        {
            Assert.Equal(3, await second.Client.GetGrain<ICounterTestGrain>("alpha").Get());
            Assert.Equal(1, await second.Client.GetGrain<ICounterTestGrain>("beta").Get());
            Assert.Equal(0, await second.Client.GetGrain<ICounterTestGrain>("gamma").Get());
            Assert.Equal(4, await second.Client.GetGrain<ICounterTestGrain>("alpha").Increment());
            await second.StopAllSilosAsync();
        }

        // Proves the rows came from this provider under the default name, not from some other registered storage.
        await using var connection = new SqliteConnection($"Data Source={_database.DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM grain_state WHERE provider = 'Default' AND state_name = 'counter';";
        Assert.Equal(2L, await command.ExecuteScalarAsync());
    }

    private async Task<InProcessTestCluster> StartClusterAsync()
    {
        var builder = new InProcessTestClusterBuilder(1);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((_, silo) => silo.AddSqliteGrainStorageAsDefault(o => o.DatabasePath = _database.DatabasePath));
        var cluster = builder.Build();
        try
        {
            await cluster.DeployAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }
}
