using ControlPlane.SupportDesk;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.SupportDesk;

public sealed class SupportDeskDatabaseTests
{
    // PII columns whose seeded values must be unique per customer (so a leak is attributable to one person).
    private static readonly string[] UniquePiiColumns =
    [
        "email", "secondary_email", "billing_email", "phone", "mobile_phone", "full_name", "date_of_birth",
        "address_line1", "postcode", "shipping_address_line1", "tax_id", "card_last4", "card_fingerprint", "iban_last4",
        "support_pin", "signup_ip", "last_login_ip", "linkedin_url", "social_handle", "avatar_url", "notes",
    ];

    [Fact]
    public async Task Schema_customers_table_is_wide()
    {
        using var db = new SupportDeskTestDatabase();
        await db.Database.InitializeAsync(SupportDeskTestDatabase.Timeout());

        var columns = await db.QueryAsync("SELECT name FROM pragma_table_info('customers');");
        var names = columns.Select(r => r[0].Value).ToList();

        Assert.True(names.Count >= 80, $"customers has only {names.Count} columns");
        Assert.Contains("card_last4", names);
        Assert.Contains("notes", names);
        Assert.Equal(3, (await db.QueryAsync("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('customers', 'orders', 'refunds');")).Count);
    }

    [Fact]
    public async Task Seed_has_fifty_customers_including_the_demo_customer_with_orders()
    {
        using var db = new SupportDeskTestDatabase();
        await db.Database.InitializeAsync(SupportDeskTestDatabase.Timeout());

        Assert.Equal(50, await db.CountAsync("customers"));
        Assert.Equal(0, await db.CountAsync("refunds"));
        Assert.Equal("cust_DEMO00000001", await db.ScalarAsync("SELECT id FROM customers WHERE email = $e;", ("$e", "ada@example.com")));
        Assert.Equal(3L, await db.ScalarAsync("SELECT COUNT(*) FROM orders WHERE customer_id = 'cust_DEMO00000001';"));

        var ids = await db.QueryAsync("SELECT id FROM customers;");
        Assert.All(ids, r => Assert.Matches("^cust_[A-Z0-9]{12}$", r[0].Value));
    }

    [Fact]
    public async Task Seed_pii_values_are_distinct_across_customers()
    {
        using var db = new SupportDeskTestDatabase();
        await db.Database.InitializeAsync(SupportDeskTestDatabase.Timeout());

        foreach (var column in UniquePiiColumns)
        {
            // Column names are test constants.
            var values = (await db.QueryAsync($"SELECT {column} FROM customers WHERE {column} IS NOT NULL;")).Select(r => r[0].Value).ToList();
            Assert.True(values.Count > 0, $"{column} has no values");
            Assert.True(values.Count == values.Distinct(StringComparer.Ordinal).Count(), $"{column} has duplicate values");
        }
    }

    [Fact]
    public async Task Seed_is_deterministic_across_databases()
    {
        using var first = new SupportDeskTestDatabase();
        using var second = new SupportDeskTestDatabase();
        await first.Database.InitializeAsync(SupportDeskTestDatabase.Timeout());
        await second.Database.InitializeAsync(SupportDeskTestDatabase.Timeout());

        foreach (var sql in new[] { "SELECT * FROM customers ORDER BY id;", "SELECT * FROM orders ORDER BY id;" })
        {
            var a = await first.QueryAsync(sql);
            var b = await second.QueryAsync(sql);
            Assert.NotEmpty(a);
            Assert.Equal(a.Count, b.Count);
            for (var i = 0; i < a.Count; i++)
            {
                Assert.Equal(a[i], b[i]);
            }
        }
    }

    [Fact]
    public async Task Initialize_is_idempotent_and_a_restart_never_reseeds()
    {
        using var db = new SupportDeskTestDatabase();
        var ct = SupportDeskTestDatabase.Timeout();
        await db.Database.InitializeAsync(ct);
        await db.Database.InitializeAsync(ct);
        var customers = await db.CountAsync("customers");
        var orders = await db.CountAsync("orders");

        // A "restart": a fresh instance over the same file.
        using (var restarted = new SupportDeskDatabase(db.DatabasePath))
        {
            await restarted.InitializeAsync(ct);
        }

        Assert.Equal(customers, await db.CountAsync("customers"));
        Assert.Equal(orders, await db.CountAsync("orders"));

        // Even with the customers gone, the seed marker stops a re-seed.
        await db.ScalarAsync("DELETE FROM orders; DELETE FROM customers;");
        using (var restarted = new SupportDeskDatabase(db.DatabasePath))
        {
            await restarted.InitializeAsync(ct);
        }

        Assert.Equal(0, await db.CountAsync("customers"));
    }

    [Fact]
    public async Task Concurrent_initialization_seeds_once()
    {
        using var db = new SupportDeskTestDatabase();
        var ct = SupportDeskTestDatabase.Timeout();
        using var other = new SupportDeskDatabase(db.DatabasePath);

        await Task.WhenAll(
            Task.Run(() => db.Database.InitializeAsync(ct), ct),
            Task.Run(() => other.InitializeAsync(ct), ct),
            Task.Run(() => db.Database.InitializeAsync(ct), ct));

        Assert.Equal(50, await db.CountAsync("customers"));
    }

    [Fact]
    public void AddSupportDesk_registers_a_singleton_database()
    {
        var path = Path.Combine(Path.GetTempPath(), "controlplane-supportdesk-di-" + Guid.NewGuid().ToString("N"), "db.sqlite");
        using var provider = new ServiceCollection().AddSupportDesk(path).BuildServiceProvider();

        var database = provider.GetRequiredService<SupportDeskDatabase>();
        Assert.Same(database, provider.GetRequiredService<SupportDeskDatabase>());
        Assert.Equal(Path.GetFullPath(path), database.DatabasePath);
        Assert.False(File.Exists(path)); // Nothing touches the disk until InitializeAsync.
    }
}
