using System.Text;
using System.Text.Json.Nodes;

namespace ControlPlane.Guard.Schemas;

/// <summary>Gives a schema's regular expressions their ECMA-262 end-of-input meaning under .NET's regex engine.</summary>
internal static class EcmaPatterns
{
    /// <summary>Rewrites every <c>pattern</c> value and <c>patternProperties</c> key in place.</summary>
    public static void Rewrite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                if (obj["pattern"] is JsonValue value && value.TryGetValue<string>(out var pattern)) obj["pattern"] = Translate(pattern);
                if (obj["patternProperties"] is JsonObject patterned)
                {
                    foreach (var (key, schema) in patterned.ToList())
                    {
                        patterned.Remove(key);
                        patterned[Translate(key)] = schema;
                    }
                }

                foreach (var (_, child) in obj.ToList()) Rewrite(child);
                break;
            case JsonArray array:
                foreach (var child in array) Rewrite(child);
                break;
        }
    }

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
