using ControlPlane.Tests.Audit;
using ControlPlane.Upstreams;
using ControlPlane.Upstreams.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Upstreams;

/// <summary>Two silos that share only a PostgreSQL key ring read each other's encrypted upstream credentials.</summary>
public sealed class PostgresKeyRingTests(PostgresAuditServer server) : IClassFixture<PostgresAuditServer>
{
    [Fact]
    public async Task A_credential_encrypted_on_one_silo_decrypts_on_another_through_the_shared_key_ring()
    {
        var database = await server.CreateDatabaseAsync();
        using var first = Silo(database.ConnectionString);
        using var second = Silo(database.ConnectionString);

        var stored = first.GetRequiredService<UpstreamSecretProtector>().Protect(
            new Dictionary<string, string> { ["API_KEY"] = "k-123456789" }, new Dictionary<string, string>());
        Assert.NotNull(stored);
        Assert.DoesNotContain("k-123456789", stored, StringComparison.Ordinal);

        var registration = new UpstreamServerRegistration("crm", null, "stdio", "node", [], null, ["API_KEY"], [], stored, "admin", DateTimeOffset.UnixEpoch);
        var revealed = second.GetRequiredService<UpstreamSecretProtector>().Reveal(registration);
        Assert.Equal("k-123456789", revealed.Env["API_KEY"]);

        // A silo with its own, unshared key ring cannot read it.
        using var stranger = new ServiceCollection().AddDataProtection().SetApplicationName("controlplane").Services
            .AddSingleton<UpstreamSecretProtector>().BuildServiceProvider();
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => stranger.GetRequiredService<UpstreamSecretProtector>().Reveal(registration));
    }

    private static ServiceProvider Silo(string connectionString) =>
        new ServiceCollection()
            .AddDataProtection().SetApplicationName("controlplane").PersistKeysToPostgres(connectionString).Services
            .AddSingleton<UpstreamSecretProtector>()
            .BuildServiceProvider();
}
