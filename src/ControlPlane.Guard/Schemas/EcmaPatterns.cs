using System.Text;

namespace ControlPlane.Guard.Schemas;

/// <summary>Gives a schema's regular expressions their ECMA-262 end-of-input meaning under .NET's regex engine.</summary>
internal static class EcmaPatterns
{
    /// <summary>Replaces each unescaped <c>$</c> outside a character class with <c>\z</c>.</summary>
    public static string Translate(string pattern)
    {
        if (!pattern.Contains('$')) return pattern;

        var result = new StringBuilder(pattern.Length + 4);
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                result.Append(c).Append(pattern[++i]);
                continue;
            }

            if (c == '[') inClass = true;
            else if (c == ']') inClass = false;

            if (c == '$' && !inClass) result.Append(@"\z");
            else result.Append(c);
        }

        return result.ToString();
    }
}
