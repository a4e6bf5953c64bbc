using System.ComponentModel;
using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ModelContextProtocol.Server;

namespace ControlPlane.Host.Drills;

/// <summary>
/// The synthetic tool server drills call (<c>cp-drill__probe</c>): a read tool that does nothing, so server and
/// tool switches can be drilled without touching a server real agents use. Only tokens with the
/// <c>server:cp-drill:read</c> scope see or call it; the drill mints those for its own synthetic agent.
/// </summary>
internal sealed class DrillToolSource : IToolSource
{
    public const string ServerId = "cp-drill";
    public const string ToolName = "probe";
    public const string PublicName = ServerId + ToolCatalog.Separator + ToolName;

    public IEnumerable<ToolDescriptor> GetTools() => ToolCatalog.FromInProcessServer(ServerId,
    [
        McpServerTool.Create(
            [Description("Answers 'ok'. Used by kill-switch drills; has no effect.")] () => "ok",
            new McpServerToolCreateOptions { Name = ToolName, ReadOnly = true, Destructive = false, Idempotent = true }),
    ], unprefixed: false);
}
