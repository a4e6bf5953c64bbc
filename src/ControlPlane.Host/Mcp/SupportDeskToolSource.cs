using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ControlPlane.SupportDesk;

namespace ControlPlane.Host.Mcp;

/// <summary>Serves the sample support desk's tools under their own names, as the contract fixes them.</summary>
internal sealed class SupportDeskToolSource(SupportDeskDatabase database) : IToolSource
{
    public IEnumerable<ToolDescriptor> GetTools() =>
        ToolCatalog.FromInProcessServer(SupportDeskServer.ServerId, SupportDeskServer.CreateTools(database), unprefixed: true);
}

/// <summary>Creates and seeds the sample database before the host takes traffic.</summary>
internal sealed class SupportDeskInitializer(SupportDeskDatabase database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => database.InitializeAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
