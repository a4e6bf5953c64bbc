using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Auditing;
using ControlPlane.Refusals;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Pipeline.Stages;

/// <summary>
/// Outermost: every request leaves a record, whatever ended it. A refusal is returned even if its record cannot be
/// written (nothing ran). An action's result is recorded as it ran (its intent is already durable; a record the store
/// refuses now is written once it is back). A read's result is withheld when its record cannot be made durable, unless
/// the read policy is fail-open.
/// </summary>
public sealed class AuditStage(CallAuditor auditor, IOptions<AuditOptions> options) : IGuardStage
{
    private readonly ReadAuditPolicy _readPolicy = options.Value.ReadPolicy;

    public string Name => "audit";

    public async ValueTask<GuardOutcome> RunAsync(GuardCall call, GuardNext next, CancellationToken cancellationToken)
    {
        var audit = call.Audit = auditor.Begin(call);
        GuardOutcome outcome;
        try
        {
            outcome = await next.RunAsync(call, cancellationToken);
        }
        catch (Exception ex)
        {
            await RecordFailureAsync(call, audit, ex is OperationCanceledException ? "cancelled" : ex.GetType().Name, null);
            throw;
        }

        switch (outcome.Kind)
        {
            case GuardOutcomeKind.Refused:
                await CallAuditor.TryRecordAsync(audit.RecordRefusalAsync(outcome.Refusal!));
                return outcome;
            case GuardOutcomeKind.Failed:
                await RecordFailureAsync(call, audit, outcome.FailureType!, outcome.Refusal!.Code);
                return outcome;
            case GuardOutcomeKind.Withheld:
                return outcome;
        }

        if (call.IsAction)
        {
            await audit.RecordActionResultAsync(outcome.Result!, call.ConfirmationId);
            return outcome;
        }

        if (await CallAuditor.TryRecordAsync(audit.RecordResultAsync(outcome.Result!, call.ConfirmationId)) || _readPolicy == ReadAuditPolicy.FailOpen)
        {
            return outcome;
        }

        return GuardOutcome.Withheld(Unavailable("The result was withheld because its audit record could not be made durable."));
    }

    /// <summary>An action's ending is kept until the store takes it (its intent is durable); a read's is best effort.</summary>
    private static Task RecordFailureAsync(GuardCall call, CallAudit audit, string errorType, string? code) =>
        call.IsAction && audit.IntentRecorded
            ? audit.RecordActionFailureAsync(errorType, code)
            : CallAuditor.TryRecordAsync(audit.RecordFailureAsync(errorType, code));

    internal static Refusal Unavailable(string what) => new(
        RefusalCodes.AuditUnavailable,
        what + " Retry in a little while; if it persists, tell the operators that auditing is down.")
    {
        RetryAfterSeconds = 5,
    };
}
