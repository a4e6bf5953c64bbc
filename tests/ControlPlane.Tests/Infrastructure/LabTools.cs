using System.ComponentModel;
using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ModelContextProtocol.Server;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>
/// A test-only in-process tool server, "lab", served with prefixed names (lab__…): a read tool that runs
/// until it is cancelled, so kill-in-flight can be observed, and a trivial action.
/// </summary>
public sealed class LabTools : IToolSource
{
    public const string ServerId = "lab";

    private int _slowStarted;
    private int _slowCancelled;

    public int SlowStarted => Volatile.Read(ref _slowStarted);

    public int SlowCancelled => Volatile.Read(ref _slowCancelled);

    public IEnumerable<ToolDescriptor> GetTools() => ToolCatalog.FromInProcessServer(ServerId,
    [
        McpServerTool.Create(
            [Description("Waits up to 30 s, then answers.")] async (CancellationToken cancellationToken) =>
            {
                Interlocked.Increment(ref _slowStarted);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(30), cancellationToken);
                    return "finished";
                }
                catch (OperationCanceledException)
                {
                    Interlocked.Increment(ref _slowCancelled);
                    throw;
                }
            },
            new McpServerToolCreateOptions { Name = "slow_read", ReadOnly = true, Destructive = false }),
        McpServerTool.Create(
            [Description("Echoes its input.")] (string text) => "echo: " + text,
            new McpServerToolCreateOptions { Name = "echo_action", ReadOnly = false }),
    ], unprefixed: false);
}
