using System.ComponentModel;
using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ModelContextProtocol.Protocol;
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

    /// <summary>While true, lab__flaky throws as a crashed downstream would.</summary>
    public volatile bool Failing;

    private int _flakyCalls;

    public int FlakyCalls => Volatile.Read(ref _flakyCalls);

    public IEnumerable<ToolDescriptor> GetTools() => Downstream().Concat(InProcess());

    /// <summary>Tools that behave like a remote server: they throw or hang instead of returning error results.</summary>
    private IEnumerable<ToolDescriptor> Downstream() =>
    [
        new ToolDescriptor(ServerId, new Tool { Name = "flaky", Annotations = new ToolAnnotations { ReadOnlyHint = true } }, ToolClassification.Read,
            (_, _) =>
            {
                Interlocked.Increment(ref _flakyCalls);
                if (Failing) throw new IOException("downstream connection reset (test)");
                return ValueTask.FromResult(new CallToolResult { Content = [new TextContentBlock { Text = "ok" }] });
            }, ServerId + ToolCatalog.Separator + "flaky"),
        new ToolDescriptor(ServerId, new Tool { Name = "hang", Annotations = new ToolAnnotations { ReadOnlyHint = true } }, ToolClassification.Read,
            async (_, ct) =>
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                return new CallToolResult();
            }, ServerId + ToolCatalog.Separator + "hang"),
    ];

    private IEnumerable<ToolDescriptor> InProcess() => ToolCatalog.FromInProcessServer(ServerId,
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
