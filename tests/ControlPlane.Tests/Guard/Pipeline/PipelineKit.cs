using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;
using ControlPlane.Tokens;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard.Pipeline;

/// <summary>
/// The real guard state and call builder on a fake clock, for unit tests of the pipeline and its stages: calls are
/// made the way the host makes them (<see cref="GuardCallBuilder"/>), with the operation the test supplies.
/// </summary>
internal sealed class PipelineKit
{
    public const string Server = "srv";
    public const string Tenant = "t";
    public const string Session = "session-1";

    public static readonly ArgumentHasher Hasher = new(Enumerable.Range(1, ArgumentHasher.MinimumKeyBytes).Select(i => (byte)i).ToArray());

    private long _version;

    public PipelineKit()
    {
        Cache = new GuardStateCache(Time, Options.Create(new GuardStateOptions()));
        Builder = new GuardCallBuilder(Cache, Hasher);
        Apply();
    }

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.Parse("2026-11-25T12:00:00Z"));

    public GuardStateCache Cache { get; }

    public GuardCallBuilder Builder { get; }

    /// <summary>Applies the next version of the guard state (what a push from the owner grain does) and returns it.</summary>
    public GuardStateView Apply(KillSwitch[]? kills = null, ToolClassificationOverride[]? classifications = null, ProjectionSetting[]? projections = null)
    {
        Cache.Apply(new GuardStateSnapshot(++_version, kills ?? [], [], ClassificationOverrides: classifications, Projections: projections));
        return Cache.Current;
    }

    public KillSwitch Kill(KillTarget target, string reason = "incident 42") => new("ks-" + _version, target, reason, "op", Time.GetUtcNow());

    public static ToolDescriptor Tool(string name, ToolClassification classification = ToolClassification.Read, string server = Server, string? registeredFor = null) =>
        new(server, new Tool { Name = name }, classification, static (_, _) => throw new InvalidOperationException("Tests run the call's operation, not the tool's invoker."), name)
        {
            TenantId = registeredFor,
        };

    public static AgentIdentity Agent(string tenant = Tenant, string agent = "agent-1") =>
        new(new GrantedToken(Tokens.Valid(tenant, agent), ScopeGrant.Parse([$"server:{Server}:read", $"server:{Server}:write"])), "test");

    public GuardCall ToolCall(ToolDescriptor tool, GuardedOperation? operation = null, IDictionary<string, JsonElement>? arguments = null, AgentIdentity? agent = null) =>
        Builder.ForTool(agent ?? Agent(), Session, tool, arguments, operation: operation);

    public GuardCall ServerCall(GuardRequestKind kind, string name, GuardedOperation operation, string server = Server, string? registeredFor = null,
        IDictionary<string, JsonElement>? arguments = null) =>
        Builder.ForServer(kind, Agent(), Session, GuardTarget.ForServer(kind, server, registeredFor, name, name), arguments, operation);

    public static Dictionary<string, JsonElement> Arguments(string json) => JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    public static CallToolResult Text(string text) => new() { Content = [new TextContentBlock { Text = text }] };
}
