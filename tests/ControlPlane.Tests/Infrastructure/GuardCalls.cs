using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.State;
using ControlPlane.Tokens;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>Guard calls for unit tests of single steps, made the way the host makes them (<see cref="GuardCallBuilder"/>).</summary>
internal static class GuardCalls
{
    private static readonly ArgumentHasher Hasher = new(Enumerable.Range(1, ArgumentHasher.MinimumKeyBytes).Select(i => (byte)i).ToArray());

    public static GuardCall ForTool(GuardStateCache state, CallIdentity identity, AgentToken token, ScopeGrant grant, ToolDescriptor tool, IDictionary<string, JsonElement>? arguments) =>
        new GuardCallBuilder(state, Hasher).ForTool(identity, token, grant, tool, arguments);
}
