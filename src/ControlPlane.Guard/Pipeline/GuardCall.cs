using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.State;
using ControlPlane.Tokens;

namespace ControlPlane.Guard.Pipeline;

/// <summary>One tools/call as the guard steps see it.</summary>
public sealed class GuardCall(CallIdentity identity, AgentToken token, ScopeGrant grant, ToolDescriptor tool, IDictionary<string, JsonElement>? arguments)
{
    public ScopeGrant Grant { get; } = grant;

    public CallIdentity Identity { get; } = identity;

    public AgentToken Token { get; } = token;

    public ToolDescriptor Tool { get; } = tool;

    /// <summary>
    /// The tool's effective classification for this tenant (operator overrides applied), decided once per call
    /// so that every step judges the call the same way.
    /// </summary>
    public bool IsAction { get; init; } = tool.IsAction;

    public IDictionary<string, JsonElement>? Arguments { get; } = arguments;

    /// <summary>
    /// Pointers (from the request's params) of keys the client sent twice in one object. The parsed
    /// <see cref="Arguments"/> kept one value of each; the schema step refuses the call rather than guess which.
    /// </summary>
    public IReadOnlyList<string> DuplicateKeys { get; init; } = [];

    /// <summary>
    /// Keyed hash of the arguments without the confirmation token, computed once per call (by the auditor)
    /// and reused by every step that binds to the exact arguments.
    /// </summary>
    public string? ArgumentsHash { get; set; }

    /// <summary>The approval whose confirmation token this call consumed, once the confirmation step accepted it.</summary>
    public string? ConfirmationId { get; set; }

    /// <summary>
    /// Set by the confirmation step when it reserved this call's token. The action may run only once its consumption
    /// is durable and so is the call's intent record.
    /// </summary>
    public IReservedConfirmation? ReservedConfirmation { get; set; }
}

/// <summary>
/// One check of the guard. Returns null to let the call go on, or the refusal that stops it. Steps run
/// in a fixed, documented order; a new safety pattern is a new step.
/// </summary>
public interface IGuardStep
{
    /// <summary>Short, stable name used in metrics, logs and to switch steps off in benchmarks.</summary>
    string Name { get; }

    ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken);
}

/// <summary>A confirmation token held for one call: consumed (durably) if the call goes ahead, released if not.</summary>
public interface IReservedConfirmation
{
    /// <summary>True once the consumption is durable; false if the reservation was no longer held (the token is then unused).</summary>
    Task<bool> ConsumeAsync();

    Task ReleaseAsync();
}
