using System.Net;
using System.Net.Sockets;
using ControlPlane.SupportDesk;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Client;

namespace ControlPlane.Benchmarks;

/// <summary>
/// The comparison point: the same support-desk tools on a plain ModelContextProtocol.AspNetCore server,
/// stateful Streamable HTTP, no guard, no authentication, no audit.
/// </summary>
internal sealed class BareServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly SupportDeskDatabase _database;

    private BareServer(WebApplication app, SupportDeskDatabase database, Uri endpoint)
    {
        _app = app;
        _database = database;
        Endpoint = endpoint;
    }

    public Uri Endpoint { get; }

    public static async Task<BareServer> StartAsync(string databasePath)
    {
        var database = new SupportDeskDatabase(databasePath);
        await database.InitializeAsync();

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddMcpServer()
            .WithHttpTransport(o => o.SessionMode = HttpServerSessionMode.Stateful)
            .WithTools(SupportDeskServer.CreateTools(database));
        var app = builder.Build();
        app.MapMcp("/mcp");
        await app.StartAsync();
        return new BareServer(app, database, new Uri($"http://127.0.0.1:{port}/mcp"));
    }

    public Task<McpClient> ConnectAsync() =>
        McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions { Endpoint = Endpoint, TransportMode = HttpTransportMode.StreamableHttp }));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _database.Dispose();
    }
}
