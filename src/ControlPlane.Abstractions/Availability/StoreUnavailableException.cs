using ControlPlane.Refusals;

namespace ControlPlane.Availability;

/// <summary>
/// A grain could not make a change durable (its grain store or the audit store is down), and changed nothing. Typed
/// and serializable so that it crosses silos intact: the operator API answers 503 with <c>Retry-After</c> from
/// whichever silo the request reached, instead of a generic 500 for an exception no other silo can read.
/// </summary>
[GenerateSerializer, Alias("cp.StoreUnavailableException")]
public sealed class StoreUnavailableException : Exception
{
    public StoreUnavailableException()
    {
    }

    public StoreUnavailableException(string code, string message, int retryAfterSeconds = 5, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        RetryAfterSeconds = retryAfterSeconds;
    }

    /// <summary><see cref="RefusalCodes.GuardUnavailable"/> (grain state) or <see cref="RefusalCodes.AuditUnavailable"/>.</summary>
    [Id(0)]
    public string Code { get; init; } = RefusalCodes.GuardUnavailable;

    [Id(1)]
    public int RetryAfterSeconds { get; init; } = 5;

    /// <summary>The grain store failed: the inner exception stays on this silo (its type may not cross), its name in the message.</summary>
    public static StoreUnavailableException GrainStore(string what, Exception inner) =>
        new(RefusalCodes.GuardUnavailable, $"{what} could not be made durable ({inner.GetType().Name}); nothing was changed. Retry shortly.");
}
