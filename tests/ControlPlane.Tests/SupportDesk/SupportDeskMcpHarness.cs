using System.IO.Pipelines;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ControlPlane.Tests.SupportDesk;

/// <summary>
/// A real MCP server hosting the given tools, connected to a real <see cref="McpClient"/> over in-memory pipes,
/// so tests exercise argument binding, result serialisation and the wire format end to end.
/// </summary>
internal sealed class SupportDeskMcpHarness : IAsyncDisposable
{
    public const string ClientName = "supportdesk-tests";

    private readonly Pipe _clientToServer = new();
    private readonly Pipe _serverToClient = new();
    private readonly CancellationTokenSource _serverCts = new();
    private McpServer? _server;
    private Task _serverTask = Task.CompletedTask;

    private SupportDeskMcpHarness()
    {
    }

    public McpClient Client { get; private set; } = null!;

    public static async Task<SupportDeskMcpHarness> StartAsync(IEnumerable<McpServerTool> tools, CancellationToken cancellationToken)
    {
        var harness = new SupportDeskMcpHarness();
        var toolCollection = new McpServerPrimitiveCollection<McpServerTool>();
        foreach (var tool in tools)
        {
            toolCollection.Add(tool);
        }

        var options = new McpServerOptions
        {
            ServerInfo = new Implementation { Name = ControlPlane.SupportDesk.SupportDeskServer.ServerId, Version = "1.0.0" },
            ToolCollection = toolCollection,
        };

        harness._server = McpServer.Create(
            new StreamServerTransport(harness._clientToServer.Reader.AsStream(), harness._serverToClient.Writer.AsStream()),
            options);
        harness._serverTask = harness._server.RunAsync(harness._serverCts.Token);

        harness.Client = await McpClient.CreateAsync(
            new StreamClientTransport(harness._clientToServer.Writer.AsStream(), harness._serverToClient.Reader.AsStream()),
            new McpClientOptions { ClientInfo = new Implementation { Name = ClientName, Version = "1.0.0" } },
            cancellationToken: cancellationToken);

        return harness;
    }

    public Task<CallToolResult> CallAsync(string tool, Dictionary<string, object?> arguments, CancellationToken cancellationToken) =>
        Client.CallToolAsync(tool, arguments, cancellationToken: cancellationToken).AsTask();

    public async ValueTask DisposeAsync()
    {
        if (Client is not null)
        {
            await Client.DisposeAsync();
        }

        await _serverCts.CancelAsync();
        await _clientToServer.Writer.CompleteAsync();
        await _serverToClient.Writer.CompleteAsync();
        try
        {
            await _serverTask;
        }
        catch (OperationCanceledException)
        {
            // Expected: the server loop ends by cancellation.
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _serverCts.Dispose();
    }
}
