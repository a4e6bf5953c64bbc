namespace ControlPlane.Approvals;

/// <summary>The exact action an agent proposed, as a human will see it (arguments redacted as the audit redacts them).</summary>
[GenerateSerializer, Immutable, Alias("cp.ApprovalRequest")]
public sealed record ApprovalRequest(
    [property: Id(0)] string Id,
    [property: Id(1)] string TenantId,
    [property: Id(2)] string AgentId,
    [property: Id(3)] string? UserId,
    [property: Id(4)] string? SessionId,
    [property: Id(5)] string TokenId,
    [property: Id(6)] string ServerId,
    [property: Id(7)] string ToolName,
    [property: Id(8)] string Arguments,
    [property: Id(9)] string ArgumentsHash,
    [property: Id(10)] DateTimeOffset RequestedAt,
    [property: Id(11)] DateTimeOffset ExpiresAt,
    [property: Id(12)] TimeSpan TokenLifetime,
    [property: Id(13)] string? SealedArguments = null);

public enum ApprovalStatus
{
    Pending,
    Approved,
    Denied,
    Expired,
    Consumed,
}

/// <summary>An approval as operators and the guard see it: never the token or its hash.</summary>
[GenerateSerializer, Immutable, Alias("cp.ApprovalView")]
public sealed record ApprovalView(
    [property: Id(0)] ApprovalRequest Request,
    [property: Id(1)] ApprovalStatus Status,
    [property: Id(2)] string? DecidedBy,
    [property: Id(3)] DateTimeOffset? DecidedAt,
    [property: Id(4)] string? Reason,
    [property: Id(5)] DateTimeOffset? TokenExpiresAt,
    [property: Id(6)] DateTimeOffset? ConsumedAt);

/// <summary>How opening an approval request went: its view, or that the audit could not record it (nothing was opened).</summary>
[GenerateSerializer, Immutable, Alias("cp.ApprovalOpening")]
public sealed record ApprovalOpening(
    [property: Id(0)] ApprovalView? View,
    [property: Id(1)] bool AuditUnavailable);

/// <summary>What a redeemed confirmation token must match: the call it is presented with.</summary>
[GenerateSerializer, Immutable, Alias("cp.RedeemContext")]
public sealed record RedeemContext(
    [property: Id(0)] string TenantId,
    [property: Id(1)] string AgentId,
    [property: Id(2)] string ServerId,
    [property: Id(3)] string ToolName,
    [property: Id(4)] string ArgumentsHash,
    [property: Id(5)] string? SessionId);

public enum RedeemOutcome
{
    Accepted,
    Unknown,
    NotApproved,
    Expired,
    AlreadyUsed,
    Mismatch,
}

/// <param name="Reservation">For an accepted <see cref="IApprovalGrain.ReserveAsync"/>: what to pass to <see cref="IApprovalGrain.ConsumeAsync"/>.</param>
[GenerateSerializer, Immutable, Alias("cp.RedeemResult")]
public sealed record RedeemResult([property: Id(0)] RedeemOutcome Outcome, [property: Id(1)] string Reason, [property: Id(2)] string? Reservation = null);

/// <summary>
/// One approval, from request to consumption. Single-threaded like every grain, so a token is consumed
/// exactly once however many silos present it at the same moment.
/// </summary>
[Alias("cp.IApprovalGrain")]
public interface IApprovalGrain : IGrainWithStringKey
{
    [Alias("Open")]
    Task<ApprovalView> OpenAsync(ApprovalRequest request);

    /// <summary>
    /// Opens the request like <see cref="OpenAsync"/>, but reports an audit store that could not record it as a typed
    /// outcome instead of an exception (an exception type of the audit assembly does not cross silos intact).
    /// </summary>
    [Alias("OpenReporting")]
    Task<ApprovalOpening> OpenReportingAsync(ApprovalRequest request);

    [Alias("Get")]
    Task<ApprovalView?> GetAsync();

    /// <summary>
    /// Approves a pending request and mints its confirmation token (returned once, stored hashed). The approval, with
    /// the approver's optional reason, is made durable in the audit first: if it cannot be, nothing is approved.
    /// </summary>
    [Alias("Approve")]
    Task<(ApprovalView View, string Token)> ApproveAsync(string approverId, string? reason = null);

    [Alias("Deny")]
    Task<ApprovalView> DenyAsync(string approverId, string reason);

    /// <summary>Validates the token against the call and consumes it; atomic.</summary>
    [Alias("Redeem")]
    Task<RedeemResult> RedeemAsync(string secret, RedeemContext call);

    /// <summary>
    /// Validates the token against the call and holds it for that call alone, in memory, for a few seconds: every other
    /// presentation meanwhile is refused as already used. Nothing is written, so the caller can make its own durable
    /// record (the call's audit intent) while <see cref="ConsumeAsync"/> writes the consumption.
    /// </summary>
    [Alias("Reserve")]
    Task<RedeemResult> ReserveAsync(string secret, RedeemContext call);

    /// <summary>
    /// Makes a reservation's consumption durable. False when the reservation is no longer held (it lapsed, or the grain
    /// was reactivated); the token is then still unused. The action may run only after this returned true.
    /// </summary>
    [Alias("Consume")]
    Task<bool> ConsumeAsync(string reservation);

    /// <summary>Gives a reservation up unused, so the token can be presented again at once; no-op if it is no longer held.</summary>
    [Alias("Release")]
    Task ReleaseAsync(string reservation);

    /// <summary>
    /// Undoes a consumption this reservation made, because the action did not run after all (its intent record could
    /// not be made durable): the token is approved and unused again, for the agent's retry. False when this activation
    /// no longer knows the consumption (reactivated): the token then stays used, the safe side.
    /// </summary>
    [Alias("Restore")]
    Task<bool> RestoreAsync(string reservation);
}

/// <summary>A tenant's open approvals, for the queue operators work through.</summary>
[Alias("cp.IApprovalIndexGrain")]
public interface IApprovalIndexGrain : IGrainWithStringKey
{
    [Alias("Add")]
    Task AddAsync(string approvalId, string dedupKey);

    [Alias("Remove")]
    Task RemoveAsync(string approvalId);

    [Alias("List"), AlwaysInterleave]
    Task<string[]> ListAsync();

    /// <summary>An open approval for the same agent, tool and arguments, so repeated calls do not flood the queue.</summary>
    [Alias("FindOpen"), AlwaysInterleave]
    Task<string?> FindOpenAsync(string dedupKey);
}
