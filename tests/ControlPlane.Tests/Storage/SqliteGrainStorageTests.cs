using ControlPlane.Grains.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans;
using Orleans.Runtime;
using Orleans.Serialization;
using Orleans.Storage;

namespace ControlPlane.Tests.Storage;

public sealed class SqliteGrainStorageTests : IDisposable
{
    private const string StateName = "counter";

    private static readonly GrainId Alpha = GrainId.Create("counter", "alpha");
    private static readonly GrainId Beta = GrainId.Create("counter", "beta");

    private readonly TempDatabaseFile _database = new();
    private readonly List<SqliteGrainStorage> _storages = [];

    public void Dispose()
    {
        foreach (var storage in _storages)
        {
            storage.Dispose();
        }

        _database.Dispose();
    }

    [Fact]
    public async Task Read_of_missing_state_gives_defaults_and_no_record()
    {
        var storage = NewStorage();
        var state = new GrainState<CounterState>(new CounterState { Value = 7, Note = "stale" }, "leftover-etag") { RecordExists = true };

        await storage.ReadStateAsync(StateName, Alpha, state);

        Assert.Equal(0, Current(state).Value);
        Assert.Null(Current(state).Note);
        Assert.Null(state.ETag);
        Assert.False(state.RecordExists);
        Assert.True(File.Exists(_database.DatabasePath));
    }

    [Fact]
    public async Task Write_then_read_in_a_new_instance_round_trips()
    {
        var written = NewState(42, "hello");
        await NewStorage().WriteStateAsync(StateName, Alpha, written);

        Assert.NotNull(written.ETag);
        Assert.True(written.RecordExists);

        var read = await ReadAsync(NewStorage(), Alpha);
        Assert.Equal(42, Current(read).Value);
        Assert.Equal("hello", Current(read).Note);
        Assert.Equal(written.ETag, read.ETag);
        Assert.True(read.RecordExists);
    }

    [Fact]
    public async Task Every_write_issues_a_new_etag()
    {
        var storage = NewStorage();
        var state = NewState(1);

        await storage.WriteStateAsync(StateName, Alpha, state);
        var first = state.ETag;
        Current(state).Value = 2;
        await storage.WriteStateAsync(StateName, Alpha, state);

        Assert.NotNull(first);
        Assert.NotNull(state.ETag);
        Assert.NotEqual(first, state.ETag);
        Assert.Equal(2, Current(await ReadAsync(storage, Alpha)).Value);
    }

    [Fact]
    public async Task Write_with_stale_etag_throws_and_leaves_stored_value_unchanged()
    {
        var storage = NewStorage();
        var current = NewState(1);
        await storage.WriteStateAsync(StateName, Alpha, current);
        var stale = NewState(99, etag: current.ETag);

        Current(current).Value = 2;
        await storage.WriteStateAsync(StateName, Alpha, current);

        var ex = await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Alpha, stale));

        Assert.Equal(current.ETag, ex.StoredEtag);
        Assert.NotEqual(current.ETag, stale.ETag);
        Assert.Equal(stale.ETag, ex.CurrentEtag);
        var read = await ReadAsync(NewStorage(), Alpha);
        Assert.Equal(2, Current(read).Value);
        Assert.Equal(current.ETag, read.ETag);
    }

    [Fact]
    public async Task Insert_without_etag_throws_when_a_row_already_exists()
    {
        var storage = NewStorage();
        var first = NewState(1);
        await storage.WriteStateAsync(StateName, Alpha, first);

        var blind = NewState(5);
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Alpha, blind));

        Assert.Null(blind.ETag);
        Assert.False(blind.RecordExists);
        Assert.Equal(1, Current(await ReadAsync(storage, Alpha)).Value);
    }

    [Fact]
    public async Task Write_with_etag_throws_when_the_row_was_deleted_meanwhile()
    {
        var storage = NewStorage();
        var state = NewState(1);
        await storage.WriteStateAsync(StateName, Alpha, state);
        var other = await ReadAsync(storage, Alpha);
        await storage.ClearStateAsync(StateName, Alpha, other);

        var ex = await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Alpha, state));

        Assert.Null(ex.StoredEtag);
        Assert.False((await ReadAsync(storage, Alpha)).RecordExists);
    }

    [Fact]
    public async Task Concurrent_inserts_of_the_same_grain_from_two_instances_have_exactly_one_winner()
    {
        var first = NewStorage();
        var second = NewStorage();

        // Many rounds on fresh grain ids so the two inserts genuinely race rather than run back to back.
        for (var round = 0; round < 25; round++)
        {
            var grainId = GrainId.Create("counter", $"race-{round}");
            var a = NewState(1, "first");
            var b = NewState(2, "second");

            // Task.Run because Microsoft.Data.Sqlite completes synchronously: awaited inline, the calls would not overlap.
            var results = await Task.WhenAll(
                Task.Run(() => CaptureAsync(() => first.WriteStateAsync(StateName, grainId, a))),
                Task.Run(() => CaptureAsync(() => second.WriteStateAsync(StateName, grainId, b))));

            Assert.Single(results, r => r is null);
            Assert.IsType<InconsistentStateException>(Assert.Single(results, r => r is not null));

            var winner = results[0] is null ? a : b;
            var read = await ReadAsync(NewStorage(), grainId);
            Assert.Equal(Current(winner).Value, Current(read).Value);
            Assert.Equal(winner.ETag, read.ETag);
        }
    }

    [Fact]
    public async Task Clear_deletes_the_row_and_resets_the_state()
    {
        var storage = NewStorage();
        var state = NewState(3, "x");
        await storage.WriteStateAsync(StateName, Alpha, state);

        await storage.ClearStateAsync(StateName, Alpha, state);

        Assert.Equal(0, Current(state).Value);
        Assert.Null(Current(state).Note);
        Assert.Null(state.ETag);
        Assert.False(state.RecordExists);

        var read = await ReadAsync(NewStorage(), Alpha);
        Assert.False(read.RecordExists);
        Assert.Null(read.ETag);
        Assert.Equal(0, Current(read).Value);

        // After a clear the grain starts over with an insert.
        Current(state).Value = 4;
        await storage.WriteStateAsync(StateName, Alpha, state);
        Assert.Equal(4, Current(await ReadAsync(storage, Alpha)).Value);
    }

    [Fact]
    public async Task Clear_with_stale_etag_throws_and_keeps_the_row()
    {
        var storage = NewStorage();
        var current = NewState(1);
        await storage.WriteStateAsync(StateName, Alpha, current);
        var stale = NewState(1, etag: current.ETag);
        await storage.WriteStateAsync(StateName, Alpha, current);

        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync(StateName, Alpha, stale));

        Assert.Equal(current.ETag, (await ReadAsync(storage, Alpha)).ETag);
    }

    [Fact]
    public async Task Clear_without_etag_throws_when_a_row_exists_and_is_a_no_op_when_none_does()
    {
        var storage = NewStorage();

        var nothing = NewState(0);
        await storage.ClearStateAsync(StateName, Alpha, nothing);
        Assert.False(nothing.RecordExists);

        await storage.WriteStateAsync(StateName, Alpha, NewState(1));
        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.ClearStateAsync(StateName, Alpha, NewState(0)));
        Assert.True((await ReadAsync(storage, Alpha)).RecordExists);
    }

    [Fact]
    public async Task An_etag_from_before_a_clear_does_not_match_the_reinserted_row()
    {
        var storage = NewStorage();
        var old = NewState(1);
        await storage.WriteStateAsync(StateName, Alpha, old);
        var holder = NewState(1, etag: old.ETag);

        await storage.ClearStateAsync(StateName, Alpha, old);
        Current(old).Value = 2;
        await storage.WriteStateAsync(StateName, Alpha, old);

        await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, Alpha, holder));
        Assert.Equal(2, Current(await ReadAsync(storage, Alpha)).Value);
    }

    [Fact]
    public async Task State_names_grain_ids_and_providers_are_isolated()
    {
        var storage = NewStorage("One");
        var otherProvider = NewStorage("Two");

        await storage.WriteStateAsync(StateName, Alpha, NewState(1));
        await storage.WriteStateAsync("other", Alpha, NewState(2));
        await storage.WriteStateAsync(StateName, Beta, NewState(3));
        await otherProvider.WriteStateAsync(StateName, Alpha, NewState(4));

        Assert.Equal(1, Current(await ReadAsync(storage, Alpha)).Value);
        Assert.Equal(2, Current(await ReadAsync(storage, Alpha, "other")).Value);
        Assert.Equal(3, Current(await ReadAsync(storage, Beta)).Value);
        Assert.Equal(4, Current(await ReadAsync(otherProvider, Alpha)).Value);
        Assert.False((await ReadAsync(otherProvider, Beta)).RecordExists);

        var alpha = await ReadAsync(storage, Alpha);
        await storage.ClearStateAsync(StateName, Alpha, alpha);
        Assert.Equal(2, Current(await ReadAsync(storage, Alpha, "other")).Value);
        Assert.Equal(4, Current(await ReadAsync(otherProvider, Alpha)).Value);
    }

    [Fact]
    public async Task Many_concurrent_writers_to_distinct_grains_all_succeed()
    {
        const int Grains = 64;
        const int WritesPerGrain = 5;
        SqliteGrainStorage[] storages = [NewStorage(), NewStorage()];

        await Task.WhenAll(Enumerable.Range(0, Grains).Select(i => Task.Run(async () =>
        {
            var storage = storages[i % storages.Length];
            var grainId = GrainId.Create("counter", $"writer-{i}");
            var state = NewState(0);
            for (var n = 1; n <= WritesPerGrain; n++)
            {
                Current(state).Value = n;
                await storage.WriteStateAsync(StateName, grainId, state);
            }
        })));

        var reader = NewStorage();
        for (var i = 0; i < Grains; i++)
        {
            var read = await ReadAsync(reader, GrainId.Create("counter", $"writer-{i}"));
            Assert.True(read.RecordExists);
            Assert.Equal(WritesPerGrain, Current(read).Value);
        }
    }

    [Fact]
    public async Task Database_uses_wal_journal_mode()
    {
        await ReadAsync(NewStorage(), Alpha);

        await using var connection = new SqliteConnection($"Data Source={_database.DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", await command.ExecuteScalarAsync() as string);
    }

    [Fact]
    public async Task Cancelled_token_is_honoured()
    {
        var storage = NewStorage();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => storage.WriteStateAsync(StateName, Alpha, NewState(1), cts.Token));
        Assert.False((await ReadAsync(storage, Alpha)).RecordExists);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(":memory:")]
    public void Missing_or_in_memory_database_path_is_rejected(string path)
    {
        var options = new SqliteGrainStorageOptions { DatabasePath = path };

        var fromValidator = Assert.Throws<OrleansConfigurationException>(
            () => new SqliteGrainStorageOptionsValidator(options, "Default").ValidateConfiguration());
        var fromConstructor = Assert.Throws<OrleansConfigurationException>(
            () => new SqliteGrainStorage("Default", options, CreateSerializer(), NullLogger<SqliteGrainStorage>.Instance));

        Assert.Contains(nameof(SqliteGrainStorageOptions.DatabasePath), fromValidator.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(SqliteGrainStorageOptions.DatabasePath), fromConstructor.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retention_deletes_only_the_named_state_written_before_the_cutoff_of_its_own_provider()
    {
        var clock = new ControlPlane.Tests.Security.ManualClock(new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero));
        var storage = NewStorage(time: clock);
        var neighbour = NewStorage("Neighbour", clock);
        var old = GrainId.Create("session", "old");
        var fresh = GrainId.Create("session", "fresh");
        var rewritten = GrainId.Create("session", "rewritten");

        var rewrittenState = NewState(1);
        await storage.WriteStateAsync("session", old, NewState(1));
        await storage.WriteStateAsync("session", rewritten, rewrittenState);
        await storage.WriteStateAsync(StateName, Alpha, NewState(1));
        await neighbour.WriteStateAsync("session", old, NewState(1));

        clock.Now += TimeSpan.FromDays(8);
        await storage.WriteStateAsync("session", fresh, NewState(2));
        await storage.WriteStateAsync("session", rewritten, rewrittenState);

        // Two batches and a remainder, so the loop's end condition is exercised too.
        for (var i = 0; i < 5; i++) await storage.WriteStateAsync("session", GrainId.Create("session", "bulk-" + i), NewState(3));
        clock.Now += TimeSpan.FromDays(1);

        var deleted = await storage.DeleteUnwrittenSinceAsync("session", clock.Now - TimeSpan.FromDays(7), batchSize: 2, CancellationToken.None);
        Assert.Equal(1, deleted);
        Assert.False((await ReadAsync(storage, old, "session")).RecordExists);
        Assert.True((await ReadAsync(storage, fresh, "session")).RecordExists);
        Assert.True((await ReadAsync(storage, rewritten, "session")).RecordExists);
        Assert.True((await ReadAsync(storage, Alpha)).RecordExists);
        Assert.True((await ReadAsync(neighbour, old, "session")).RecordExists);

        Assert.Equal(7, await storage.DeleteUnwrittenSinceAsync("session", clock.Now, batchSize: 2, CancellationToken.None));
        Assert.True((await ReadAsync(storage, Alpha)).RecordExists);

        // An activation that still holds a deleted record's ETag conflicts on its next write, as after any lost race.
        Assert.IsType<InconsistentStateException>(await CaptureAsync(() => storage.WriteStateAsync("session", rewritten, rewrittenState)));
    }

    private SqliteGrainStorage NewStorage(string name = "Default", TimeProvider? time = null)
    {
        var storage = new SqliteGrainStorage(
            name,
            new SqliteGrainStorageOptions { DatabasePath = _database.DatabasePath },
            CreateSerializer(),
            NullLogger<SqliteGrainStorage>.Instance,
            time);
        _storages.Add(storage);
        return storage;
    }

    // The serializer a silo registers by default, built without a silo: default Newtonsoft settings suffice for plain state types.
    private static JsonGrainStorageSerializer CreateSerializer() =>
        new(new OrleansJsonSerializer(Options.Create(new OrleansJsonSerializerOptions())));

    private static GrainState<CounterState> NewState(int value, string? note = null, string? etag = null) =>
        new(new CounterState { Value = value, Note = note }, etag);

    // The provider contract says State is never null after a read, write or clear; assert it rather than suppress it.
    private static CounterState Current(GrainState<CounterState> state)
    {
        Assert.NotNull(state.State);
        return state.State;
    }

    private static async Task<GrainState<CounterState>> ReadAsync(SqliteGrainStorage storage, GrainId grainId, string stateName = StateName)
    {
        var state = new GrainState<CounterState>();
        await storage.ReadStateAsync(stateName, grainId, state);
        return state;
    }

    private static async Task<Exception?> CaptureAsync(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (InconsistentStateException ex)
        {
            return ex;
        }
    }
}
