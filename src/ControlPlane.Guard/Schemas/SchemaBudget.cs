using System.Diagnostics;

namespace ControlPlane.Guard.Schemas;

/// <summary>
/// The deadline of the validation running on this thread. Validation is synchronous (the schema library has no
/// cancellation), so the deadline rides on the thread: each regular expression checks it before it runs, and each match
/// is bounded on its own, so a validation ends within its budget plus one match.
/// </summary>
internal static class SchemaBudget
{
    [ThreadStatic] private static long t_deadline;

    /// <summary>Starts a budget on this thread (within any budget already running); dispose to end it.</summary>
    public static Scope Start(TimeSpan budget)
    {
        var previous = t_deadline;
        var deadline = Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * Stopwatch.Frequency);
        t_deadline = previous != 0 && previous < deadline ? previous : deadline;
        return new Scope(previous);
    }

    /// <summary>Throws <see cref="SchemaBudgetExceededException"/> if this thread's validation is out of time.</summary>
    public static void Check(string pointer)
    {
        var deadline = t_deadline;
        if (deadline != 0 && Stopwatch.GetTimestamp() > deadline) throw new SchemaBudgetExceededException(pointer, null);
    }

    /// <summary>Checks the budget, and that <paramref name="input"/> is short enough to match (<see cref="SchemaRegex.MaxMatchedLength"/>).</summary>
    public static void CheckMatch(string input, string pointer)
    {
        Check(pointer);
        if (input.Length > SchemaRegex.MaxMatchedLength) throw new SchemaBudgetExceededException(pointer, null);
    }

    public readonly struct Scope(long previous) : IDisposable
    {
        public void Dispose() => t_deadline = previous;
    }
}
