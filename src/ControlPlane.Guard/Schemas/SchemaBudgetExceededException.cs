namespace ControlPlane.Guard.Schemas;

/// <summary>A validation ran out of its time budget, at <see cref="Pointer"/> (a regular expression that took too long).</summary>
public sealed class SchemaBudgetExceededException(string pointer, Exception? inner)
    : Exception($"Validating the arguments ran out of time at '{pointer}'.", inner)
{
    public string Pointer { get; } = pointer;
}
