using System.Text;
using System.Text.RegularExpressions;
using Json.Schema;

namespace ControlPlane.Guard.Schemas;

/// <summary>
/// Builds the regular expressions a schema's <c>pattern</c> and <c>patternProperties</c> name so that none can burn
/// the CPU. A pattern that .NET's linear-time engine (<see cref="RegexOptions.NonBacktracking"/>) can run runs there,
/// rewritten to keep its ECMA-262 meaning (<c>\d</c>, <c>\w</c>, <c>\s</c> are ASCII, <c>$</c> is the end of input).
/// One that needs backtracking (a lookaround, a backreference, a word boundary) runs on the ECMAScript engine with a
/// match timeout, and only where the schema's owner cannot be asked to rewrite it (an upstream tool's own schema);
/// an operator's schema override with such a pattern is refused. Either way each match is bounded (by the input's
/// length, <see cref="MaxMatchedLength"/>, or by the timeout), and the whole validation has a deadline (<see cref="SchemaBudget"/>).
/// </summary>
internal static class SchemaRegex
{
    /// <summary>Longer patterns are refused: nothing legitimate needs them, and building one costs time and memory.</summary>
    public const int MaxPatternLength = 1000;

    /// <summary>One backtracking match's bound.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// The longest string a pattern is matched against; a longer one is refused as too slow to check. This, not a match
    /// timeout, bounds a linear-time match (at most pattern × input steps): .NET 10's non-backtracking engine can answer
    /// a match as found when its timeout fires while it is still building its automaton (seen here under load: 27
    /// wrong answers in 5,000 fresh instances with a 1 ms timeout), which would let a value through a pattern it breaks.
    /// </summary>
    public const int MaxMatchedLength = 64 * 1024;

    private const RegexOptions Linear = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    /// <summary>
    /// The regex for <paramref name="pattern"/>, or a <see cref="JsonSchemaException"/> that says why it cannot be
    /// used. <paramref name="allowBacktracking"/> lets a pattern that needs backtracking run under the match timeout.
    /// </summary>
    public static Regex Create(string pattern, bool allowBacktracking, string keyword)
    {
        if (pattern.Length > MaxPatternLength)
        {
            throw new JsonSchemaException($"'{keyword}' pattern is {pattern.Length} characters; at most {MaxPatternLength} are accepted.");
        }

        var ecma = EcmaPatterns.Translate(pattern);
        Regex backtracking;
        try
        {
            // The meaning JSON Schema gives a pattern (ECMA-262); also how it is checked to be a regex at all.
            backtracking = new Regex(ecma, RegexOptions.ECMAScript, MatchTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new JsonSchemaException($"'{keyword}' value '{Shorten(pattern)}' is not a regular expression: {ex.Message}");
        }

        if (ToLinear(pattern) is { } linear)
        {
            try
            {
                return new Regex(linear, Linear);
            }
            catch (NotSupportedException)
            {
                // A construct only the backtracking engine runs: lookarounds, atomic groups, conditionals.
            }
        }

        if (allowBacktracking) return backtracking;
        throw new JsonSchemaException(
            $"'{keyword}' pattern '{Shorten(pattern)}' needs a backtracking regex engine (a lookaround, backreference, atomic group or word boundary), " +
            "whose matching time can grow exponentially with the input. Rewrite it without those constructs.");
    }

    /// <summary>
    /// <paramref name="pattern"/> for the non-backtracking engine with its ECMA-262 meaning, or null when that cannot
    /// be written (a backreference, a word boundary, a negated class escape inside a class).
    /// </summary>
    internal static string? ToLinear(string pattern)
    {
        var result = new StringBuilder(pattern.Length + 16);
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                var next = pattern[++i];
                switch (next)
                {
                    case 'd': result.Append(inClass ? "0-9" : "[0-9]"); continue;
                    case 'w': result.Append(inClass ? "a-zA-Z0-9_" : "[a-zA-Z0-9_]"); continue;
                    case 's': result.Append(inClass ? @" \f\n\r\t\v" : @"[ \f\n\r\t\v]"); continue;
                    case 'D' or 'W' or 'S' when inClass: return null;
                    case 'D': result.Append("[^0-9]"); continue;
                    case 'W': result.Append("[^a-zA-Z0-9_]"); continue;
                    case 'S': result.Append(@"[^ \f\n\r\t\v]"); continue;
                    case 'b' or 'B' when !inClass: return null;
                    case 'k': return null;
                    case >= '1' and <= '9' when !inClass: return null;
                    default: result.Append(c).Append(next); continue;
                }
            }

            if (c == '[' && !inClass) inClass = true;
            else if (c == ']' && inClass) inClass = false;

            if (c == '$' && !inClass) result.Append(@"\z");
            else result.Append(c);
        }

        return result.ToString();
    }

    private static string Shorten(string pattern) => pattern.Length <= 80 ? pattern : pattern[..80] + "…";
}
