namespace ControlPlane.GuardState;

/// <summary>
/// The guard state owner refused a change that breaks a bound (<see cref="GuardStateLimits"/>), and changed nothing.
/// Typed and serializable so that it crosses silos intact: the operator API answers 400 naming
/// <see cref="Field"/> for a field out of bounds, and 409 for a full tenant or record, whichever silo the request
/// reached (an <see cref="ArgumentException"/> from a grain would be a 500 there).
/// </summary>
[GenerateSerializer, Alias("cp.GuardStateLimitException")]
public sealed class GuardStateLimitException : Exception
{
    public GuardStateLimitException()
    {
    }

    public GuardStateLimitException(string field, string message, bool full)
        : base(message)
    {
        Field = field;
        Full = full;
    }

    /// <summary>The request field at fault (<c>reason</c>, <c>schema</c>...), or what is full (<c>killSwitches</c>...).</summary>
    [Id(0)]
    public string Field { get; init; } = "";

    /// <summary>True when the input is fine but there is no room for it (409): the message says what to clear.</summary>
    [Id(1)]
    public bool Full { get; init; }

    public static GuardStateLimitException Invalid(string field, string message) => new(field, message, full: false);

    public static GuardStateLimitException NoRoom(string what, string message) => new(what, message, full: true);
}
