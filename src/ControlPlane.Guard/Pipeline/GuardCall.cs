using System.Text.Json;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.State;
using ControlPlane.Tokens;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Pipeline;

/// <summary>Runs the request itself once every stage let it through.</summary>
public delegate ValueTask<Result> GuardedOperation(GuardCall call, CancellationToken cancellationToken);

/// <summary>
/// One guarded MCP request as every stage sees it, made once by <see cref="GuardCallBuilder"/>: who asks, what it
/// reaches, the guard state pinned for the whole request, the arguments without the confirmation token and their
/// hash. Only the stages' own results (the reserved confirmation, the audit in progress) are set later.
/// </summary>
public sealed class GuardCall
{
    internal GuardCall(
        GuardRequestKind kind,
        CallIdentity identity,
        AgentToken token,
        ScopeGrant grant,
        GuardTarget target,
        GuardStateView state,
        IDictionary<string, JsonElement>? arguments,
        string? confirmationToken,
        string argumentsHash,
        IReadOnlyList<string> duplicateKeys,
        GuardedOperation? operation,
        object? request)
    {
        Kind = kind;
        Identity = identity;
        Token = token;
        Grant = grant;
        Target = target;
        State = state;
        // Decided once against the pinned state, so every stage judges the call the same way.
        IsAction = target.Tool is { } tool && state.Policy.IsAction(tool, identity.TenantId);
        Arguments = arguments;
        ConfirmationToken = confirmationToken;
        ArgumentsHash = argumentsHash;
        DuplicateKeys = duplicateKeys;
        Operation = operation ?? NothingToRun;
        Request = request;
    }

    public GuardRequestKind Kind { get; }

    public CallIdentity Identity { get; }

    public AgentToken Token { get; }

    public ScopeGrant Grant { get; }

    public GuardTarget Target { get; }

    /// <summary>The tool, for a tools/call; null for the other kinds.</summary>
    public Catalog.ToolDescriptor? Tool => Target.Tool;

    /// <summary>The guard state this request is judged against, from its first stage to its last.</summary>
    public GuardStateView State { get; }

    /// <summary>The tool's effective classification for this tenant (operator overrides applied); only tools are actions.</summary>
    public bool IsAction { get; }

    /// <summary>The arguments as the tool will get them: without <c>confirmation_token</c>, which the guard consumes.</summary>
    public IDictionary<string, JsonElement>? Arguments { get; }

    /// <summary>The <c>confirmation_token</c> the caller sent (an empty string if it was not a string), or null.</summary>
    public string? ConfirmationToken { get; }

    /// <summary>Keyed hash of <see cref="Arguments"/>: what the audit records and a confirmation is bound to.</summary>
    public string ArgumentsHash { get; }

    /// <summary>
    /// Pointers (from the request's params) of keys the client sent twice in one object. The parsed
    /// <see cref="Arguments"/> kept one value of each; the schema step refuses the call rather than guess which.
    /// </summary>
    public IReadOnlyList<string> DuplicateKeys { get; }

    /// <summary>What runs once the guard allowed it.</summary>
    public GuardedOperation Operation { get; }

    /// <summary>The adapter's own request object, for <see cref="Operation"/> (so the operation can be a static lambda).</summary>
    public object? Request { get; }

    /// <summary>The approval whose confirmation token this call consumed, once the confirmation step accepted it.</summary>
    public string? ConfirmationId { get; set; }

    /// <summary>
    /// Set by the confirmation step when it reserved this call's token. The action may run only once its consumption
    /// is durable and so is the call's intent record.
    /// </summary>
    public IReservedConfirmation? ReservedConfirmation { get; set; }

    /// <summary>The audit of this request, begun by the audit stage; null where no audit stage runs (step benchmarks).</summary>
    public CallAudit? Audit { get; set; }

    private static ValueTask<Result> NothingToRun(GuardCall call, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("This call was built for the checks alone and has nothing to run.");
}
