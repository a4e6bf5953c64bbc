using System.Text.Json;
using ControlPlane.Audit;
using ControlPlane.Audit.Redaction;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Audit;

/// <summary>The embedded default's audit hash key: one per data directory, whichever of its silos creates it.</summary>
public sealed class AuditHashKeyTests
{
    [Fact]
    public async Task Silos_starting_together_on_one_data_directory_all_hash_with_the_same_key()
    {
        var arguments = new Dictionary<string, JsonElement> { ["email"] = JsonSerializer.SerializeToElement("ada@example.com") };

        // The window between one silo creating the file and writing the key is short: many rounds make it likely to be hit.
        for (var round = 0; round < 100; round++)
        {
            var dataDir = Path.Combine(Path.GetTempPath(), "cp-hashkey-" + Guid.NewGuid().ToString("N")[..12]);
            try
            {
                using var start = new Barrier(4);
                var silos = Enumerable.Range(0, 4).Select(_ => Task.Factory.StartNew(() =>
                {
                    var services = new ServiceCollection();
                    services.AddControlPlaneAudit(new ConfigurationBuilder().Build(), dataDir, generateKey: true);
                    using var provider = services.BuildServiceProvider();
                    start.SignalAndWait();
                    return provider.GetRequiredService<ArgumentHasher>().Hash(arguments);
                }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToList();

                var hashes = await Task.WhenAll(silos);
                Assert.Single(hashes.Distinct());
                Assert.Equal(["audit-hash.key"], Directory.GetFiles(dataDir).Select(Path.GetFileName));
                if (!OperatingSystem.IsWindows())
                {
                    Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dataDir, "audit-hash.key")));
                }
            }
            finally
            {
                Directory.Delete(dataDir, recursive: true);
            }
        }
    }
}
