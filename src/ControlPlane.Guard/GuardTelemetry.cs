using System.Diagnostics;

namespace ControlPlane.Guard;

/// <summary>
/// The guard's traces (ActivitySource <c>ControlPlane</c>): one span per guarded request (tools/call, resources/read, prompts/get, ...) and a child per guard
/// step and for the tool itself. Tags name the tenant, server, tool, decision and refusal code; never arguments,
/// results or credentials. Spans are created only when something listens (an exporter or a test listener).
/// </summary>
public static class GuardTelemetry
{
    public const string SourceName = "ControlPlane";

    public const string CallSpan = "guard tools/call";
    public const string TenantTag = "controlplane.tenant";
    public const string AgentTag = "controlplane.agent";
    public const string ServerTag = "controlplane.server";
    public const string ToolTag = "controlplane.tool";
    public const string DecisionTag = "controlplane.decision";
    public const string CodeTag = "controlplane.code";
    public const string OutcomeTag = "controlplane.outcome";
    public const string StepTag = "controlplane.guard.step";
    public const string KindTag = "controlplane.kind";

    public static ActivitySource Source { get; } = new(SourceName);
}
