using System.Data.Common;
using System.Globalization;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Storage;

namespace ControlPlane.Tests.Audit;

/// <summary>
/// The behaviour every <see cref="IAuditStore"/> must have, run against each implementation by a derived class.
/// Tests may share a database (PostgreSQL shares one per class), so each test writes only its own tenants,
/// and names its agents, users, sessions and tools with its own run id.
/// </summary>
public abstract class AuditStoreContractTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Base = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly List<IAuditStore> _stores = [];

    protected string Run { get; } = Guid.NewGuid().ToString("N")[..10];

    /// <summary>The migrated store every test starts with.</summary>
    protected IAuditStore Store { get; private set; } = null!;

    /// <summary>This test's database (already migrated once).</summary>
    protected abstract AuditTestDatabase Database { get; }

    /// <summary>A brand-new database with no schema, for the migration tests.</summary>
    protected abstract Task<AuditTestDatabase> CreateEmptyDatabaseAsync();

    public virtual async Task InitializeAsync()
    {
        Store = NewStore(Database);
        await Store.MigrateAsync(Timeout());
    }

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            switch (store)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync();
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }

    // Another tenant's records in the same batch make it a large one: stores may write small and large batches differently.
    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public async Task Append_then_query_returns_every_field_exactly(int otherTenantRecords)
    {
        var tenant = Tenant("fields");
        // A non-UTC offset and sub-microsecond ticks: both must come back normalised to UTC whole microseconds.
        var timestamp = new DateTimeOffset(2025, 3, 1, 14, 0, 0, TimeSpan.FromHours(2)).AddTicks(1_234_567);
        var full = new AuditEntry
        {
            Id = NewId(),
            Timestamp = timestamp,
            TenantId = tenant,
            AgentId = "agent-ü",
            UserId = "user@example.test",
            SessionId = "session-1",
            TokenId = "tok_123",
            Kind = "tools/call",
            Server = "support-desk",
            Tool = "refund_order",
            Arguments = """{"amount":12.5,"note":"naïve \"quoted\" ✓ 😀","card":"[redacted]"}""",
            ArgumentsHash = new string('a', 64),
            Decision = "refused",
            Code = "confirmation_required",
            Outcome = "refused",
            ErrorType = "ConfirmationRequired",
            ResultHash = new string('b', 64),
            ResultSize = 9_007_199_254_740_993, // beyond a double's exact integers
            LatencyMs = 12.345678901234567,
            ConfirmationId = "conf-1",
            Silo = "silo-a",
            Detail = "line one\nline two\ttabbed",
        };
        var minimal = new AuditEntry
        {
            Id = NewId(),
            Timestamp = timestamp.AddSeconds(1),
            TenantId = tenant,
            Kind = "tools/list",
            Decision = "allowed",
            Outcome = "success",
        };

        var appended = (await Store.AppendAsync([full, minimal, .. Entries(Tenant("fields-other"), otherTenantRecords)], Timeout())).Take(2).ToList();

        Assert.Equal(2, appended.Count);
        Assert.Equal(full with { Timestamp = AuditChain.Normalize(timestamp) }, appended[0].Entry);
        Assert.Equal(minimal with { Timestamp = AuditChain.Normalize(minimal.Timestamp) }, appended[1].Entry);
        Assert.Equal(TimeSpan.Zero, appended[0].Entry.Timestamp.Offset);
        Assert.Equal(0, appended[0].Entry.Timestamp.UtcTicks % 10);

        var page = await Store.QueryAsync(new AuditQuery { TenantIds = [tenant] }, Timeout());
        Assert.Null(page.NextCursor);
        Assert.Equal(Enumerable.Reverse(appended), page.Items);
        foreach (var record in page.Items)
        {
            AssertSameFields(appended.Single(r => r.Entry.Id == record.Entry.Id).Entry, record.Entry);
            Assert.Equal(TimeSpan.Zero, record.Entry.Timestamp.Offset);
            Assert.Equal(AuditChain.ComputeHash(record.Entry, record.Sequence, record.PreviousHash), record.Hash);
        }

        // Hashing the caller's original (unnormalised) entry gives the same hash: the chain is defined at microseconds.
        Assert.Equal(AuditChain.ComputeHash(full, 1, AuditChain.Genesis), appended[0].Hash);
    }

    [Fact]
    public async Task Sequences_start_at_one_and_are_contiguous_per_tenant()
    {
        var tenant = Tenant("seq");
        var all = new List<AuditRecord>();
        foreach (var size in new[] { 1, 5, 2, 10 })
        {
            all.AddRange(await Store.AppendAsync(Entries(tenant, size), Timeout()));
        }

        Assert.Equal(Enumerable.Range(1, 18).Select(i => (long)i), all.Select(r => r.Sequence));
        var stored = (await ExportAsync(new AuditQuery { TenantIds = [tenant] })).OrderBy(r => r.Sequence);
        Assert.Equal(all, stored);
    }

    [Fact]
    public async Task Hashes_link_each_record_to_the_previous_one()
    {
        var tenant = Tenant("hash");
        var all = new List<AuditRecord>();
        all.AddRange(await Store.AppendAsync(Entries(tenant, 3), Timeout()));
        all.AddRange(await Store.AppendAsync(Entries(tenant, 3), Timeout()));

        var previous = AuditChain.Genesis;
        foreach (var record in all)
        {
            Assert.Equal(previous, record.PreviousHash);
            Assert.Equal(AuditChain.ComputeHash(record.Entry, record.Sequence, previous), record.Hash);
            previous = record.Hash;
        }

        var stored = (await ExportAsync(new AuditQuery { TenantIds = [tenant] })).OrderBy(r => r.Sequence);
        Assert.Equal(all, stored);
        Assert.Equal(new ChainVerification(true, 6, null, null), await Store.VerifyAsync(tenant, Timeout()));
    }

    [Fact]
    public async Task Two_tenants_interleaved_in_one_batch_each_get_their_own_chain()
    {
        var a = Tenant("a");
        var b = Tenant("b");
        await Store.AppendAsync(Entries(a, 2), Timeout());
        var batch = Enumerable.Range(0, 10).Select(i => Entry(i % 2 == 0 ? a : b, Base.AddSeconds(i))).ToList();

        var appended = await Store.AppendAsync(batch, Timeout());

        Assert.Equal(batch.Select(e => e.Id), appended.Select(r => r.Entry.Id));
        Assert.Equal([3L, 4, 5, 6, 7], appended.Where(r => r.Entry.TenantId == a).Select(r => r.Sequence));
        Assert.Equal([1L, 2, 3, 4, 5], appended.Where(r => r.Entry.TenantId == b).Select(r => r.Sequence));
        Assert.Equal(AuditChain.Genesis, appended.First(r => r.Entry.TenantId == b).PreviousHash);
        Assert.Equal(new ChainVerification(true, 7, null, null), await Store.VerifyAsync(a, Timeout()));
        Assert.Equal(new ChainVerification(true, 5, null, null), await Store.VerifyAsync(b, Timeout()));
    }

    [Fact]
    public async Task Concurrent_appenders_on_two_store_instances_keep_every_chain_contiguous()
    {
        var second = NewStore(Database);
        await second.MigrateAsync(Timeout());
        IAuditStore[] stores = [Store, second];
        var tenants = Enumerable.Range(0, 3).Select(i => Tenant("c" + i)).ToArray();
        const int Tasks = 8, Batches = 50, PerBatch = 4;

        var results = await Task.WhenAll(Enumerable.Range(0, Tasks).Select(task => Task.Run(async () =>
        {
            var mine = new List<AuditRecord>();
            for (var batch = 0; batch < Batches; batch++)
            {
                // Each batch touches two of the three tenants, in varying order, so batches contend on shared heads.
                var entries = Enumerable.Range(0, PerBatch)
                    .Select(i => Entry(tenants[(task + batch + (i % 2)) % tenants.Length], Base.AddMilliseconds(batch)))
                    .ToList();
                mine.AddRange(await stores[task % 2].AppendAsync(entries, Timeout()));
            }

            return mine;
        })));

        var appended = results.SelectMany(r => r).ToList();
        Assert.Equal(Tasks * Batches * PerBatch, appended.Count);
        foreach (var tenant in tenants)
        {
            var returned = appended.Where(r => r.Entry.TenantId == tenant).OrderBy(r => r.Sequence).ToList();
            Assert.Equal(Enumerable.Range(1, returned.Count).Select(i => (long)i), returned.Select(r => r.Sequence));

            var stored = (await ExportAsync(new AuditQuery { TenantIds = [tenant] })).OrderBy(r => r.Sequence).ToList();
            Assert.Equal(returned, stored);
            Assert.Equal(new ChainVerification(true, returned.Count, null, null), await second.VerifyAsync(tenant, Timeout()));
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("tenant")]
    [InlineData("agent")]
    [InlineData("user")]
    [InlineData("session")]
    [InlineData("tool")]
    [InlineData("decision")]
    [InlineData("outcome")]
    [InlineData("from")]
    [InlineData("to")]
    [InlineData("from-to")]
    [InlineData("combined")]
    [InlineData("kind")]
    [InlineData("kind-prefix")]
    [InlineData("kind-prefix-escaped")]
    public async Task Filters_and_cursor_paging_return_exactly_the_expected_rows_newest_first(string filter)
    {
        var (tenants, records) = await SeedAsync();
        var (query, predicate) = filter switch
        {
            "none" => (new AuditQuery { TenantIds = tenants }, (Func<AuditEntry, bool>)(_ => true)),
            "tenant" => (new AuditQuery { TenantIds = [tenants[0], tenants[2]] }, e => e.TenantId == tenants[0] || e.TenantId == tenants[2]),
            // The run-specific values isolate this test without a tenant filter, which covers "every tenant".
            "agent" => (new AuditQuery { AgentId = $"{Run}-agent1" }, e => e.AgentId == $"{Run}-agent1"),
            "user" => (new AuditQuery { UserId = $"{Run}-user3" }, e => e.UserId == $"{Run}-user3"),
            "session" => (new AuditQuery { SessionId = $"{Run}-session2" }, e => e.SessionId == $"{Run}-session2"),
            "tool" => (new AuditQuery { Tool = $"{Run}-refund" }, e => e.Tool == $"{Run}-refund"),
            "decision" => (new AuditQuery { TenantIds = tenants, Decision = "refused" }, e => e.Decision == "refused"),
            "outcome" => (new AuditQuery { TenantIds = tenants, Outcome = "error" }, e => e.Outcome == "error"),
            "from" => (new AuditQuery { TenantIds = tenants, From = Base.AddSeconds(40) }, e => e.Timestamp >= Base.AddSeconds(40)),
            "to" => (new AuditQuery { TenantIds = tenants, To = Base.AddSeconds(20) }, e => e.Timestamp < Base.AddSeconds(20)),
            "from-to" => (new AuditQuery { TenantIds = tenants, From = Base.AddSeconds(10), To = Base.AddSeconds(30) },
                e => e.Timestamp >= Base.AddSeconds(10) && e.Timestamp < Base.AddSeconds(30)),
            "combined" => (new AuditQuery { TenantIds = [tenants[0]], Decision = "allowed", Outcome = "success", SessionId = $"{Run}-session3", From = Base.AddSeconds(5) },
                e => e.TenantId == tenants[0] && e.Decision == "allowed" && e.Outcome == "success" && e.SessionId == $"{Run}-session3" && e.Timestamp >= Base.AddSeconds(5)),
            "kind" => (new AuditQuery { TenantIds = tenants, Kind = "tools/list" }, e => e.Kind == "tools/list"),
            "kind-prefix" => (new AuditQuery { TenantIds = tenants, Kind = "operator/*" }, e => e.Kind.StartsWith("operator/", StringComparison.Ordinal)),
            "kind-prefix-escaped" => (new AuditQuery { TenantIds = tenants, Kind = "op_x/*" }, e => e.Kind.StartsWith("op_x/", StringComparison.Ordinal)),
            _ => throw new ArgumentOutOfRangeException(nameof(filter)),
        };

        var expected = NewestFirst(records.Where(r => predicate(r.Entry))).ToList();
        Assert.NotEmpty(expected);
        Assert.True(expected.Count < records.Count || filter == "none", "the filter should exclude something");

        var paged = await PageAllAsync(query with { Limit = 17 });
        Assert.Equal(Keys(expected), Keys(paged));
        Assert.Equal(expected, paged);

        var exported = await ExportAsync(query with { Limit = 3, Cursor = null });
        Assert.Equal(Keys(expected), Keys(exported));
    }

    [Fact]
    public async Task Export_returns_the_same_rows_as_paging()
    {
        var (tenants, records) = await SeedAsync();

        var paged = await PageAllAsync(new AuditQuery { TenantIds = tenants, Limit = 50 });
        var exported = await ExportAsync(new AuditQuery { TenantIds = tenants });

        Assert.Equal(records.Count, exported.Count);
        Assert.Equal(paged, exported);
        Assert.Equal(NewestFirst(records), exported);
    }

    [Fact]
    public async Task Limit_is_clamped_and_the_last_page_has_no_cursor()
    {
        var (tenants, records) = await SeedAsync();

        var one = await Store.QueryAsync(new AuditQuery { TenantIds = tenants, Limit = 0 }, Timeout());
        Assert.Single(one.Items);
        Assert.NotNull(one.NextCursor);

        var negative = await Store.QueryAsync(new AuditQuery { TenantIds = tenants, Limit = -5 }, Timeout());
        Assert.Single(negative.Items);

        var all = await Store.QueryAsync(new AuditQuery { TenantIds = tenants, Limit = 100_000 }, Timeout());
        Assert.Equal(records.Count, all.Items.Count);
        Assert.Null(all.NextCursor);

        // A page that ends exactly at the last row says so, rather than promising an empty page.
        var exact = await Store.QueryAsync(new AuditQuery { TenantIds = tenants, Limit = records.Count }, Timeout());
        Assert.Equal(records.Count, exact.Items.Count);
        Assert.Null(exact.NextCursor);

        var nobody = await Store.QueryAsync(new AuditQuery { TenantIds = [] }, Timeout());
        Assert.Empty(nobody.Items);
        Assert.Null(nobody.NextCursor);
    }

    [Fact]
    public async Task A_cursor_that_the_store_did_not_issue_is_rejected()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new AuditQuery { Cursor = "not a cursor!" }, Timeout()));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.QueryAsync(new AuditQuery { Cursor = "AAAA" }, Timeout()));
    }

    [Fact]
    public async Task An_empty_tenant_verifies_with_nothing_checked()
    {
        Assert.Equal(new ChainVerification(true, 0, null, null), await Store.VerifyAsync(Tenant("empty"), Timeout()));
    }

    [Fact]
    public async Task Altered_arguments_break_the_chain_at_that_record()
    {
        var tenant = Tenant("tamper");
        await Store.AppendAsync(Entries(tenant, 10), Timeout());

        var changed = await Database.ExecuteAsync(
            "UPDATE audit_records SET arguments = @arguments WHERE tenant_id = @tenant AND seq = @seq",
            ("@arguments", """{"amount":1}"""), ("@tenant", tenant), ("@seq", 6L));
        Assert.Equal(1, changed);

        var result = await Store.VerifyAsync(tenant, Timeout());
        Assert.False(result.Ok);
        Assert.Equal(6, result.FirstBroken);
        Assert.Equal(5, result.Checked);
        Assert.False(string.IsNullOrWhiteSpace(result.Problem));
    }

    [Fact]
    public async Task A_deleted_middle_record_breaks_the_chain_at_the_record_after_the_gap()
    {
        var tenant = Tenant("gap");
        await Store.AppendAsync(Entries(tenant, 10), Timeout());

        Assert.Equal(1, await Database.ExecuteAsync("DELETE FROM audit_records WHERE tenant_id = @tenant AND seq = @seq", ("@tenant", tenant), ("@seq", 4L)));

        var result = await Store.VerifyAsync(tenant, Timeout());
        Assert.False(result.Ok);
        Assert.Equal(5, result.FirstBroken);
        Assert.Contains("4", result.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleted_last_records_are_caught_by_the_head()
    {
        var tenant = Tenant("tail");
        await Store.AppendAsync(Entries(tenant, 10), Timeout());

        Assert.Equal(2, await Database.ExecuteAsync("DELETE FROM audit_records WHERE tenant_id = @tenant AND seq > @seq", ("@tenant", tenant), ("@seq", 8L)));

        var result = await Store.VerifyAsync(tenant, Timeout());
        Assert.False(result.Ok);
        Assert.Equal(9, result.FirstBroken);
        Assert.Equal(8, result.Checked);
    }

    [Fact]
    public async Task Purge_removes_the_older_half_and_the_rest_verifies_from_the_anchor()
    {
        var tenant = Tenant("purge");
        var other = Tenant("bystander");
        var records = await Store.AppendAsync(
            Enumerable.Range(0, 100).SelectMany(i => new[] { Entry(tenant, Base.AddSeconds(i)), Entry(other, Base.AddSeconds(i)) }).ToList(),
            Timeout());
        var mine = records.Where(r => r.Entry.TenantId == tenant).ToList();

        var purged = await Store.PurgeAsync(tenant, Base.AddSeconds(50), Timeout());

        Assert.Equal(50, purged);
        Assert.Equal(new ChainVerification(true, 50, null, null), await Store.VerifyAsync(tenant, Timeout()));
        var left = await ExportAsync(new AuditQuery { TenantIds = [tenant] });
        Assert.Equal(NewestFirst(mine.Skip(50)), left);
        Assert.Empty(await ExportAsync(new AuditQuery { TenantIds = [tenant], To = Base.AddSeconds(50) }));

        // The anchor is the last purged record, and verify really starts from it.
        var anchor = Assert.Single(await Database.QueryAsync("SELECT seq, hash FROM audit_anchors WHERE tenant_id = @tenant", ("@tenant", tenant)));
        Assert.Equal(50L, Convert.ToInt64(anchor[0], CultureInfo.InvariantCulture));
        Assert.Equal(mine[49].Hash, anchor[1]);

        // Other tenants are untouched.
        Assert.Equal(100, (await ExportAsync(new AuditQuery { TenantIds = [other] })).Count);
        Assert.Equal(new ChainVerification(true, 100, null, null), await Store.VerifyAsync(other, Timeout()));

        // An older cutoff finds nothing left to purge and leaves the anchor alone.
        Assert.Equal(0, await Store.PurgeAsync(tenant, Base.AddSeconds(10), Timeout()));
        Assert.Equal(new ChainVerification(true, 50, null, null), await Store.VerifyAsync(tenant, Timeout()));

        // Without its anchor the retained chain no longer starts at genesis.
        await Database.ExecuteAsync("DELETE FROM audit_anchors WHERE tenant_id = @tenant", ("@tenant", tenant));
        var broken = await Store.VerifyAsync(tenant, Timeout());
        Assert.False(broken.Ok);
        Assert.Equal(51, broken.FirstBroken);
    }

    [Fact]
    public async Task Purging_everything_keeps_the_head_and_the_chain_continues()
    {
        var tenant = Tenant("purge-all");
        await Store.AppendAsync(Entries(tenant, 5), Timeout());

        Assert.Equal(5, await Store.PurgeAsync(tenant, Base.AddYears(1), Timeout()));
        Assert.Equal(new ChainVerification(true, 0, null, null), await Store.VerifyAsync(tenant, Timeout()));

        var next = Assert.Single(await Store.AppendAsync([Entry(tenant, Base.AddYears(2))], Timeout()));
        Assert.Equal(6, next.Sequence);
        Assert.Equal(new ChainVerification(true, 1, null, null), await Store.VerifyAsync(tenant, Timeout()));
    }

    [Fact]
    public async Task Purge_deletes_by_sequence_so_interleaved_timestamps_keep_the_chain_contiguous()
    {
        var tenant = Tenant("interleaved");
        // Silos' clocks differ: record 2 carries a later time than record 3.
        await Store.AppendAsync(
            [Entry(tenant, Base), Entry(tenant, Base.AddSeconds(3)), Entry(tenant, Base.AddSeconds(2)), Entry(tenant, Base.AddSeconds(5))],
            Timeout());

        // Older than 2.5 s: records 1 and 3, so everything up to 3 goes, including record 2.
        Assert.Equal(3, await Store.PurgeAsync(tenant, Base.AddSeconds(2.5), Timeout()));

        Assert.Equal([4L], (await ExportAsync(new AuditQuery { TenantIds = [tenant] })).Select(r => r.Sequence));
        Assert.Equal(new ChainVerification(true, 1, null, null), await Store.VerifyAsync(tenant, Timeout()));
    }

    [Fact]
    public async Task Lone_records_of_one_tenant_from_two_store_instances_alternating_and_concurrent_keep_one_chain()
    {
        // A lone call's record is the common append; a store may continue from the head it last wrote (PostgreSQL
        // does) and must notice when another silo's store has moved it since.
        var second = NewStore(Database);
        await second.MigrateAsync(Timeout());
        IAuditStore[] stores = [Store, second];
        var tenant = Tenant("lone");

        var alternating = new List<AuditRecord>();
        for (var i = 0; i < 6; i++)
        {
            alternating.AddRange(await stores[i % 2].AppendAsync([Entry(tenant, Base.AddSeconds(i))], Timeout()));
        }

        Assert.Equal([1L, 2, 3, 4, 5, 6], alternating.Select(r => r.Sequence));

        const int Tasks = 6, PerTask = 40;
        var concurrent = await Task.WhenAll(Enumerable.Range(0, Tasks).Select(task => Task.Run(async () =>
        {
            var mine = new List<AuditRecord>();
            for (var i = 0; i < PerTask; i++)
            {
                mine.AddRange(await stores[task % 2].AppendAsync([Entry(tenant, Base.AddMinutes(1).AddMilliseconds(i))], Timeout()));
            }

            return mine;
        })));

        var returned = alternating.Concat(concurrent.SelectMany(r => r)).OrderBy(r => r.Sequence).ToList();
        Assert.Equal(Enumerable.Range(1, 6 + Tasks * PerTask).Select(i => (long)i), returned.Select(r => r.Sequence));
        Assert.Equal(returned, (await ExportAsync(new AuditQuery { TenantIds = [tenant] })).OrderBy(r => r.Sequence).ToList());
        Assert.Equal(new ChainVerification(true, returned.Count, null, null), await Store.VerifyAsync(tenant, Timeout()));

        // Each store's next lone record still continues the one chain.
        var last = await second.AppendAsync([Entry(tenant, Base.AddHours(1))], Timeout());
        var after = await Store.AppendAsync([Entry(tenant, Base.AddHours(1))], Timeout());
        Assert.Equal([returned.Count + 1L, returned.Count + 2L], last.Concat(after).Select(r => r.Sequence));
        Assert.Equal(last[0].Hash, after[0].PreviousHash);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    public async Task A_duplicate_id_fails_the_whole_batch_and_stores_nothing_from_it(int padding)
    {
        // Padding makes the batches large: a store may write small and large batches differently (PostgreSQL does).
        var tenant = Tenant("dup" + padding);
        var fresh = Tenant("dup-new" + padding);
        var first = await Store.AppendAsync(Entries(tenant, 2), Timeout());

        // Already stored: the retried entry sits after a new one, which must not survive either.
        var retried = Entry(tenant, Base) with { Id = first[1].Entry.Id };
        await Assert.ThrowsAnyAsync<DbException>(() => Store.AppendAsync([Entry(tenant, Base), Entry(fresh, Base), .. Entries(fresh, padding), retried], Timeout()));
        // Alone, right after the batch that stored it (a store may take a shorter path for a lone record).
        await Assert.ThrowsAnyAsync<DbException>(() => Store.AppendAsync([retried], Timeout()));

        // Twice within one batch.
        var twice = Entry(fresh, Base);
        await Assert.ThrowsAnyAsync<DbException>(() => Store.AppendAsync([twice, .. Entries(fresh, padding), Entry(fresh, Base), twice], Timeout()));

        Assert.Equal(first.Reverse(), await ExportAsync(new AuditQuery { TenantIds = [tenant, fresh] }));
        Assert.Equal(new ChainVerification(true, 2, null, null), await Store.VerifyAsync(tenant, Timeout()));
        Assert.Equal(new ChainVerification(true, 0, null, null), await Store.VerifyAsync(fresh, Timeout()));

        // The heads did not move: the next batch continues where the last good one ended.
        var next = await Store.AppendAsync([Entry(tenant, Base), Entry(fresh, Base)], Timeout());
        Assert.Equal([3L, 1L], next.Select(r => r.Sequence));
    }

    [Fact]
    public async Task Migrations_apply_once_even_when_run_twice_and_concurrently()
    {
        var database = await CreateEmptyDatabaseAsync();
        var stores = Enumerable.Range(0, 4).Select(_ => NewStore(database)).ToList();

        await Task.WhenAll(stores.Select(s => s.MigrateAsync(Timeout())));
        await stores[0].MigrateAsync(Timeout());
        await stores[0].MigrateAsync(Timeout());

        var versions = await database.QueryAsync("SELECT version FROM audit_schema_migrations ORDER BY version");
        Assert.Equal([1L], versions.Select(v => Convert.ToInt64(v[0], CultureInfo.InvariantCulture)));

        var tenant = Tenant("migrated");
        await stores[1].AppendAsync(Entries(tenant, 3), Timeout());
        Assert.Equal(new ChainVerification(true, 3, null, null), await stores[2].VerifyAsync(tenant, Timeout()));
    }

    [Fact]
    public async Task Ping_reports_a_reachable_database()
    {
        Assert.True(await Store.PingAsync(Timeout()));
    }

    protected static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token;

    protected IAuditStore NewStore(AuditTestDatabase database)
    {
        var store = database.CreateStore();
        _stores.Add(store);
        return store;
    }

    protected string Tenant(string name) => $"t-{Run}-{name}";

    private static string NewId() => "call-" + Guid.NewGuid().ToString("N");

    private static AuditEntry Entry(string tenant, DateTimeOffset timestamp) => new()
    {
        Id = NewId(),
        Timestamp = timestamp,
        TenantId = tenant,
        AgentId = "agent",
        Kind = "tools/call",
        Server = "support-desk",
        Tool = "lookup_customer",
        Arguments = """{"email":"[redacted]"}""",
        Decision = "allowed",
        Outcome = "success",
        LatencyMs = 1.5,
    };

    protected static List<AuditEntry> Entries(string tenant, int count) =>
        Enumerable.Range(0, count).Select(i => Entry(tenant, Base.AddSeconds(i))).ToList();

    /// <summary>
    /// 252 records over three tenants with varied fields. Four records share each timestamp (across and within
    /// tenants), and timestamps carry sub-microsecond ticks, so paging has to get every tie-break right.
    /// </summary>
    private async Task<(string[] Tenants, List<AuditRecord> Records)> SeedAsync()
    {
        string[] tenants = [Tenant("s0"), Tenant("s1"), Tenant("s2")];
        var entries = Enumerable.Range(0, 252).Select(i =>
        {
            var refused = i % 4 == 0;
            return new AuditEntry
            {
                Id = NewId(),
                Timestamp = Base.AddSeconds(i / 4).AddTicks(7),
                TenantId = tenants[i % 3],
                AgentId = $"{Run}-agent{i % 4}",
                UserId = i % 7 == 0 ? null : $"{Run}-user{i % 5}",
                SessionId = $"{Run}-session{i % 6}",
                // A few operator-style kinds; "op_x" beside "opzx" catches a prefix filter that lets '_' act as a wildcard.
                Kind = i % 3 == 2 ? "tools/list" : (i % 16) switch { 1 or 9 => "operator/mode.set", 5 => "op_x/a", 13 => "opzx/a", _ => "tools/call" },
                Server = "support-desk",
                Tool = (i % 3) switch { 0 => $"{Run}-lookup", 1 => $"{Run}-refund", _ => null },
                Decision = refused ? "refused" : "allowed",
                Code = refused ? "scope_denied" : null,
                Outcome = refused ? "refused" : i % 5 == 0 ? "error" : "success",
                LatencyMs = i / 10.0,
                ResultSize = i,
            };
        }).ToList();

        // Three batches, so the tenants' chains span commits.
        var records = new List<AuditRecord>();
        foreach (var chunk in entries.Chunk(100))
        {
            records.AddRange(await Store.AppendAsync(chunk, Timeout()));
        }

        return (tenants, records);
    }

    private async Task<List<AuditRecord>> PageAllAsync(AuditQuery query)
    {
        var all = new List<AuditRecord>();
        var cursors = new HashSet<string>();
        string? cursor = null;
        do
        {
            var page = await Store.QueryAsync(query with { Cursor = cursor }, Timeout());
            Assert.InRange(page.Items.Count, 1, query.Limit);
            Assert.True(page.NextCursor is null || page.Items.Count == query.Limit, "only a full page may have a next page");
            all.AddRange(page.Items);
            cursor = page.NextCursor;
            Assert.True(cursor is null || cursors.Add(cursor), "a cursor repeated");
        }
        while (cursor is not null);

        Assert.Equal(all.Count, all.Select(r => r.Entry.Id).Distinct().Count());
        return all;
    }

    private async Task<List<AuditRecord>> ExportAsync(AuditQuery query)
    {
        var all = new List<AuditRecord>();
        await foreach (var record in Store.ExportAsync(query, Timeout()))
        {
            all.Add(record);
        }

        return all;
    }

    private static IEnumerable<AuditRecord> NewestFirst(IEnumerable<AuditRecord> records) =>
        records
            .OrderByDescending(r => r.Entry.Timestamp)
            .ThenBy(r => r.Entry.TenantId, StringComparer.Ordinal)
            .ThenByDescending(r => r.Sequence);

    private static List<string> Keys(IEnumerable<AuditRecord> records) =>
        records.Select(r => $"{r.Entry.TenantId}#{r.Sequence}").ToList();

    // Field by field as well as record equality, so a failure names the field that did not round-trip.
    private static void AssertSameFields(AuditEntry expected, AuditEntry actual)
    {
        foreach (var property in typeof(AuditEntry).GetProperties())
        {
            Assert.True(Equals(property.GetValue(expected), property.GetValue(actual)), $"{property.Name}: expected {property.GetValue(expected)}, got {property.GetValue(actual)}");
        }
    }
}
