using System.Text.Json;
using ControlPlane.Approvals;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Authentication;
using ControlPlane.Refusals;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>Confirmation settings, bound from <c>ControlPlane:Confirmation</c>.</summary>
public sealed class ConfirmationOptions
{
    public const string SectionName = "ControlPlane:Confirmation";

    /// <summary>How long an approval request stays open for a human to decide.</summary>
    public TimeSpan RequestLifetime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How long a minted confirmation token may be used.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Per tool (<c>serverId/toolName</c>) token lifetimes that differ from the default.</summary>
    public Dictionary<string, TimeSpan> ToolTokenLifetimes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>A Slack-compatible incoming webhook told about every new approval request; off when unset.</summary>
    public string? WebhookUrl { get; set; }

    /// <summary>Where approvers open an approval (the console's or API's base URL), for the link in notifications.</summary>
    public string? ApprovalLinkBase { get; set; }
}

/// <summary>
/// An action runs only with a valid confirmation token, minted when a human approved this exact
/// call. Without one, the call is refused with REQUIRES_CONFIRMATION and an approval request is opened
/// (or the open one for the same call reused), so the assistant can tell the human what to approve.
/// </summary>
public sealed class ConfirmationStep(
    IGrainFactory grains,
    Redactor redactor,
    IOptions<ConfirmationOptions> options,
    ApprovalNotifier notifier,
    ApprovalIds approvalIds,
    ControlPlane.Guard.Approvals.ApprovalArgumentSeal seal,
    [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time) : IGuardStep
{
    public string Name => "confirmation";

    public async ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (!call.IsAction) return null;
        try
        {
            return await ConfirmAsync(call, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Fail closed: an action whose confirmation cannot be checked does not run.
            return new Refusal(RefusalCodes.GuardUnavailable, "The confirmation could not be checked, so the action was not run. Retry shortly.") { RetryAfterSeconds = 5 };
        }
    }

    private static Refusal AuditUnavailable() =>
        new(RefusalCodes.AuditUnavailable, "The confirmation could not be recorded in the audit trail, so the action was not run. Retry shortly.") { RetryAfterSeconds = 5 };


    private async ValueTask<Refusal?> ConfirmAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var arguments = call.Arguments;
        var argumentsHash = call.ArgumentsHash;
        var presented = call.ConfirmationToken;
        string reason;
        if (presented is null)
        {
            reason = "Action tools need a human's approval of this exact call.";
        }
        else if (!SecretTokens.TryParse(presented, "cpc", out var approvalId, out var secret))
        {
            reason = "The confirmation_token is not a confirmation token.";
        }
        else if (!approvalIds.IsGenuine(approvalId))
        {
            // Made up or from another cluster: refused in memory, so guessing ids activates no grain.
            reason = "The confirmation_token was not issued by this control plane.";
        }
        else
        {
            var context = new RedeemContext(call.Identity.TenantId, call.Identity.AgentId, call.Target.ServerId, call.Target.Name, argumentsHash, call.Identity.SessionId);
            var grain = grains.GetGrain<IApprovalGrain>(approvalId);
            var result = await grain.ReserveAsync(secret, context).WaitAsync(cancellationToken);
            if (result.Outcome == RedeemOutcome.Accepted)
            {
                // Held for this call only; the gateway makes the consumption durable alongside the call's intent record.
                call.ConfirmationId = approvalId;
                call.ReservedConfirmation = new Reservation(grain, result.Reservation!);
                return null;
            }

            reason = result.Reason;
        }

        var approval = await OpenApprovalAsync(call, arguments, argumentsHash, cancellationToken);
        return approval is null ? AuditUnavailable() : Refusal(call, approval, reason);
    }

    /// <summary>The open request for this exact call (reused) or a new one; null when the audit could not record a new one.</summary>
    private async Task<ApprovalView?> OpenApprovalAsync(GuardCall call, IDictionary<string, JsonElement>? arguments, string argumentsHash, CancellationToken cancellationToken)
    {
        var index = grains.GetGrain<IApprovalIndexGrain>(call.Identity.TenantId);
        var dedupKey = $"{call.Identity.AgentId}|{call.Target.ServerId}|{call.Target.Name}|{argumentsHash}";
        if (await index.FindOpenAsync(dedupKey).WaitAsync(cancellationToken) is { } openId
            && await grains.GetGrain<IApprovalGrain>(openId).GetAsync() is { Status: ApprovalStatus.Pending } open)
        {
            return open;
        }

        var now = time.GetUtcNow();
        var settings = options.Value;
        var toolKey = call.Target.Key;
        var id = approvalIds.NewId();
        var request = new ApprovalRequest(
            id,
            call.Identity.TenantId, call.Identity.AgentId, call.Identity.UserId, call.Identity.SessionId, call.Token.Id,
            call.Target.ServerId, call.Target.Name,
            redactor.RedactToCanonicalJson(arguments, toolKey), argumentsHash,
            now, now + settings.RequestLifetime,
            settings.ToolTokenLifetimes.TryGetValue(toolKey, out var lifetime) ? lifetime : settings.TokenLifetime,
            seal.Seal(id, CanonicalJson.Serialize(arguments)));

        var opening = await grains.GetGrain<IApprovalGrain>(request.Id).OpenReportingAsync(request).WaitAsync(cancellationToken);
        if (opening.View is not { } view) return null;
        await index.AddAsync(request.Id, dedupKey).WaitAsync(cancellationToken);
        notifier.Notify(request);
        return view;
    }

    private static Refusal Refusal(GuardCall call, ApprovalView approval, string reason)
    {
        var request = approval.Request;
        var proposed = JsonSerializer.SerializeToElement(new Dictionary<string, object>
        {
            ["server"] = request.ServerId,
            ["tool"] = request.ToolName,
            ["arguments"] = JsonDocument.Parse(request.Arguments).RootElement.Clone(),
        });
        return new Refusal(
            RefusalCodes.RequiresConfirmation,
            $"'{call.Target.PublicName}' needs a human's approval of this exact call. Ask the user to have an approver approve request " +
            $"{request.Id} (operator console, or POST /api/v1/approvals/{request.Id}/approve) before {request.ExpiresAt:u}; then call the tool " +
            "again with the same arguments plus \"confirmation_token\" set to the token the approver gives you. Do not change the arguments.")
        {
            Reason = reason,
            Extra = new Dictionary<string, JsonElement>
            {
                ["approval_id"] = JsonSerializer.SerializeToElement(request.Id),
                ["expires_at"] = JsonSerializer.SerializeToElement(request.ExpiresAt),
                ["proposed_action"] = proposed,
            },
        };
    }

    private sealed class Reservation(IApprovalGrain approval, string id) : IReservedConfirmation
    {
        public Task<bool> ConsumeAsync() => approval.ConsumeAsync(id);

        public Task ReleaseAsync() => approval.ReleaseAsync(id);

        public Task<bool> RestoreAsync() => approval.RestoreAsync(id);
    }

}
