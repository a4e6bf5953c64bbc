using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Pipeline;

/// <summary>How a guarded request ended, and so how the audit stage records it.</summary>
public enum GuardOutcomeKind
{
    /// <summary>It ran and answered (its result may still be the tool's own error).</summary>
    Ran,

    /// <summary>A check refused it; nothing ran.</summary>
    Refused,

    /// <summary>It was allowed and started, then ended in a refusal (killed in flight, downstream unavailable).</summary>
    Failed,

    /// <summary>Refused because its audit record could not be made durable: there is nothing to record it in.</summary>
    Withheld,
}

/// <summary>The outcome of one guarded request: a result, or the refusal the caller gets instead.</summary>
public readonly struct GuardOutcome
{
    private GuardOutcome(GuardOutcomeKind kind, Result? result, Refusal? refusal, string? failureType)
    {
        Kind = kind;
        Result = result;
        Refusal = refusal;
        FailureType = failureType;
    }

    public GuardOutcomeKind Kind { get; }

    public Result? Result { get; }

    public Refusal? Refusal { get; }

    /// <summary>For <see cref="GuardOutcomeKind.Failed"/>: the audit's error type (<c>killed</c>, <c>upstream_unavailable</c>).</summary>
    public string? FailureType { get; }

    public static GuardOutcome Ran(Result result) => new(GuardOutcomeKind.Ran, result, null, null);

    public static GuardOutcome Refused(Refusal refusal) => new(GuardOutcomeKind.Refused, null, refusal, null);

    public static GuardOutcome Failed(Refusal refusal, string failureType) => new(GuardOutcomeKind.Failed, null, refusal, failureType);

    public static GuardOutcome Withheld(Refusal refusal) => new(GuardOutcomeKind.Withheld, null, refusal, null);
}
