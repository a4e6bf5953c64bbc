using ControlPlane.Guard.Auditing;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// Before an action runs, two durable writes to two stores, neither needing the other: its intent record (audit) and
/// its confirmation token's consumption (approval grain). They run together; the action runs only once both are
/// durable. If only the consumption was, it is undone, so the agent's retry can use the same token (the action did not
/// run, and the agent was told to retry). Reads pass straight through.
/// </summary>
public sealed class ActionCommitStage : IGuardStage
{
    public string Name => "action-commit";

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        if (!call.IsAction) return await next.RunAsync(call, cancellationToken);

        var intent = call.Audit is { } audit ? CallAuditor.TryRecordAsync(audit.RecordIntentAsync(call.ConfirmationId)) : Task.FromResult(true);
        var consumed = TryConsumeAsync(call.ReservedConfirmation);
        var intentDurable = await intent;
        if (!await consumed)
        {
            return GuardOutcome.Refused(new Refusal(RefusalCodes.GuardUnavailable, "The confirmation could not be recorded as used, so the action was not run. Retry shortly with the same confirmation_token.")
            {
                RetryAfterSeconds = 2,
            });
        }

        if (!intentDurable)
        {
            if (call.ReservedConfirmation is { } reserved) await TryRestoreAsync(reserved);
            return GuardOutcome.Withheld(AuditStage.Unavailable("The action was not run because its audit record could not be made durable."));
        }

        return await next.RunAsync(call, cancellationToken);
    }

    private static async Task TryRestoreAsync(IReservedConfirmation reserved)
    {
        try
        {
            await reserved.RestoreAsync();
        }
        catch (Exception)
        {
            // The token stays used: the safe side. The human approves again.
        }
    }

    private static async Task<bool> TryConsumeAsync(IReservedConfirmation? reserved)
    {
        if (reserved is null) return true;
        try
        {
            return await reserved.ConsumeAsync();
        }
        catch (Exception)
        {
            // Storage or the grain's silo failed, so nothing runs. A failed write already dropped the grain's state;
            // otherwise give the token back so the agent's retry need not wait for the reservation to lapse.
            try { await reserved.ReleaseAsync(); } catch (Exception) { }
            return false;
        }
    }
}
