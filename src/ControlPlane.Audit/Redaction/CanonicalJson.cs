using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Audit.Redaction;

/// <summary>
/// One text for one JSON value, so that hashes and stored arguments do not depend on key order or whitespace.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Object members are sorted by the ordinal UTF-16 order of their names, at every level.</item>
/// <item>A name that occurs more than once in an object keeps only its last value (what most parsers,
/// and <c>JsonSerializer</c> into a dictionary, end up with).</item>
/// <item>No whitespace.</item>
/// <item>Strings are escaped the RFC 8785 way with a fixed rule, not a <c>JavaScriptEncoder</c>: only <c>"</c>,
/// <c>\</c> and control characters are escaped, everything else is literal UTF-8, so the text does not change
/// with the runtime's Unicode tables. An unpaired surrogate is written as U+FFFD, and invalid UTF-8 in the
/// input likewise.</item>
/// <item>Numbers are written exactly as their token text (<c>1.50e3</c> stays <c>1.50e3</c>): reparsing to a
/// double would round large integers and differ from what the caller sent.</item>
/// <item>An undefined <see cref="JsonElement"/> (the default value) is written as <c>null</c>.</item>
/// </list>
/// Not full RFC 8785: that would rewrite numbers in their shortest double form.
/// </remarks>
public static class CanonicalJson
{
    public static string Serialize(JsonElement value)
    {
        var emitter = JsonEmitter.Rent();
        try
        {
            WriteTo(emitter, value);
            return Encoding.UTF8.GetString(emitter.Written);
        }
        finally
        {
            emitter.Return();
        }
    }

    /// <summary>Tool-call arguments as one canonical object; null is <c>{}</c>.</summary>
    public static string Serialize(IDictionary<string, JsonElement>? arguments)
    {
        var emitter = JsonEmitter.Rent();
        try
        {
            WriteTo(emitter, arguments);
            return Encoding.UTF8.GetString(emitter.Written);
        }
        finally
        {
            emitter.Return();
        }
    }

    /// <summary>Writes the canonical text as one raw value, wherever <paramref name="writer"/> expects a value.</summary>
    public static void Write(Utf8JsonWriter writer, JsonElement value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var emitter = JsonEmitter.Rent();
        try
        {
            WriteTo(emitter, value);
            writer.WriteRawValue(emitter.Written, skipInputValidation: true);
        }
        finally
        {
            emitter.Return();
        }
    }

    /// <inheritdoc cref="Write(Utf8JsonWriter, JsonElement)"/>
    public static void Write(Utf8JsonWriter writer, IDictionary<string, JsonElement>? arguments)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var emitter = JsonEmitter.Rent();
        try
        {
            WriteTo(emitter, arguments);
            writer.WriteRawValue(emitter.Written, skipInputValidation: true);
        }
        finally
        {
            emitter.Return();
        }
    }

    internal static void WriteTo(JsonEmitter emitter, IDictionary<string, JsonElement>? arguments)
    {
        emitter.StartObject();
        if (arguments is { Count: > 0 })
        {
            var keys = RentSortedKeys(arguments, out var count);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    emitter.PropertyName(keys[i]);
                    WriteTo(emitter, arguments[keys[i]]);
                }
            }
            finally
            {
                ReturnKeys(keys, count);
            }
        }

        emitter.EndObject();
    }

    internal static void WriteTo(JsonEmitter emitter, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                // Input depth is bounded by whoever parsed it; fail with an exception, not a crashed process.
                RuntimeHelpers.EnsureSufficientExecutionStack();
                var members = ObjectMembers.RentSorted(value, out var count);
                try
                {
                    emitter.StartObject();
                    for (var i = 0; i < count; i++)
                    {
                        emitter.PropertyName(members[i].Name);
                        WriteTo(emitter, members[i].Value);
                    }

                    emitter.EndObject();
                }
                finally
                {
                    ObjectMembers.Return(members, count);
                }

                break;
            case JsonValueKind.Array:
                RuntimeHelpers.EnsureSufficientExecutionStack();
                emitter.StartArray();
                foreach (var item in value.EnumerateArray()) WriteTo(emitter, item);
                emitter.EndArray();
                break;
            case JsonValueKind.String:
                emitter.StringFromToken(JsonTokens.StringContent(value));
                break;
            case JsonValueKind.Number:
            case JsonValueKind.True:
            case JsonValueKind.False:
            case JsonValueKind.Null:
                emitter.Literal(JsonMarshal.GetRawUtf8Value(value));
                break;
            default:
                emitter.Literal("null"u8);
                break;
        }
    }

    /// <summary>The dictionary's keys in ordinal order, in a pooled array.</summary>
    internal static string[] RentSortedKeys(IDictionary<string, JsonElement> arguments, out int count)
    {
        var keys = ArrayPool<string>.Shared.Rent(arguments.Count);
        arguments.Keys.CopyTo(keys, 0);
        count = arguments.Count;
        Array.Sort(keys, 0, count, StringComparer.Ordinal);
        return keys;
    }

    internal static void ReturnKeys(string[] keys, int count)
    {
        keys.AsSpan(0, count).Clear();
        ArrayPool<string>.Shared.Return(keys);
    }
}
