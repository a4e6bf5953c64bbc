using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Tests.Security;

/// <summary>
/// One real host for the security tests, with every log line the host writes captured (down to Debug)
/// so tests can look for secrets in them. Separate from the shared embedded host so the tests' tenants,
/// operators and switches never meet other collections' assertions.
/// </summary>
public sealed class SecurityHostFixture : IAsyncLifetime
{
    public CapturedLogs Logs { get; } = new();

    public ControlPlaneTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneTestHost.StartAsync(
        settings: new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Debug" },
        configureServices: services => services.AddSingleton<ILoggerProvider>(Logs));

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SecurityHostCollection : ICollectionFixture<SecurityHostFixture>
{
    public const string Name = "security host";
}
