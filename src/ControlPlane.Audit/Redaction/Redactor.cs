using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Audit.Redaction;

/// <summary>
/// Removes secrets and personal data from JSON and text before they are stored or shown.
/// </summary>
/// <remarks>
/// <para>In order of precedence, for every value:</para>
/// <list type="number">
/// <item>A pointer rule for the tool (<see cref="RedactionRules"/>) replaces the value with <c>[REDACTED]</c>.</item>
/// <item>A property whose name ends in a secret word (<c>password</c>, <c>passwd</c>, <c>passphrase</c>, <c>secret</c>,
/// <c>secretkey</c>, <c>token</c>, <c>apikey</c>, <c>privatekey</c>, <c>authorization</c>), ignoring case and
/// <c>-</c>/<c>_</c>/<c>.</c>/space, has any non-null value replaced with <c>[REDACTED:secret]</c>: so
/// <c>client_secret</c>, <c>X-Api-Key</c> and <c>refreshToken</c> are covered, <c>max_tokens</c> and
/// <c>password_updated_at</c> are not.</item>
/// <item>Containers nested deeper than <see cref="MaxDepth"/> become <c>[REDACTED:too-deep]</c>.</item>
/// <item>In every string value (not in property names), only the matching part is replaced: e-mail addresses,
/// phone numbers and Luhn-valid card numbers (when <see cref="RedactionOptions.DetectPii"/> is on) and bearer
/// credentials, JWTs, API keys and private keys (always). A JSON number that is a card number is replaced too.</item>
/// </list>
/// <para>No JSON input makes it throw: invalid UTF-8 and lone surrogates are decoded leniently, depth is capped,
/// and if the pattern ever times out the whole string is withheld as <c>[REDACTED:timeout]</c>. Thread-safe.</para>
/// </remarks>
public sealed class Redactor
{
    /// <summary>Containers at this nesting level (the root being level 0) or deeper are replaced whole.</summary>
    public const int MaxDepth = 64;

    private const int StackChars = 256;

    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = MaxDepth + 2 };

    // Compared against the tail of a property name, lowercased with separators dropped.
    private static readonly string[] SecretWords =
        ["password", "passwd", "passphrase", "secret", "secretkey", "token", "apikey", "privatekey", "authorization"];

    private readonly bool _detectPii;

    public Redactor(RedactionOptions? options = null)
    {
        options ??= new RedactionOptions();
        Rules = RedactionRules.FromOptions(options);
        _detectPii = options.DetectPii;
    }

    public RedactionRules Rules { get; }

    /// <summary>Whether e-mail addresses, phone numbers and card numbers are looked for (secrets always are).</summary>
    public bool DetectsPii => _detectPii;

    /// <summary>
    /// The value with everything sensitive replaced, keeping the input's member order. When nothing needs
    /// replacing the input element itself is returned.
    /// </summary>
    /// <param name="toolKey"><c>serverId/toolName</c> for pointer rules; null for none.</param>
    public JsonElement Redact(JsonElement value, string? toolKey = null)
    {
        if (value.ValueKind == JsonValueKind.Undefined) return value;
        var rules = Rules.Start(toolKey);

        // One pass that always writes: emitting is cheap next to scanning, and a separate read-only pass
        // would scan every string twice whenever something does need replacing.
        var emitter = JsonEmitter.Rent();
        try
        {
            return Visit(emitter, value, rules, 0, canonical: false) ? JsonElement.Parse(emitter.Written, ParseOptions) : value;
        }
        finally
        {
            emitter.Return();
        }
    }

    /// <summary>The redacted arguments as <see cref="CanonicalJson"/>, for the audit store; null is <c>{}</c>.</summary>
    public string RedactToCanonicalJson(IDictionary<string, JsonElement>? arguments, string? toolKey = null)
    {
        var rules = Rules.Start(toolKey);
        var emitter = JsonEmitter.Rent();
        try
        {
            if (rules is { Redact: true })
            {
                emitter.String(SensitiveText.Replacement(RedactionKind.Pointer));
            }
            else
            {
                emitter.StartObject();
                if (arguments is { Count: > 0 })
                {
                    var keys = CanonicalJson.RentSortedKeys(arguments, out var count);
                    try
                    {
                        for (var i = 0; i < count; i++) VisitMember(emitter, keys[i], null, arguments[keys[i]], rules, 0, canonical: true);
                    }
                    finally
                    {
                        CanonicalJson.ReturnKeys(keys, count);
                    }
                }

                emitter.EndObject();
            }

            return Encoding.UTF8.GetString(emitter.Written);
        }
        finally
        {
            emitter.Return();
        }
    }

    /// <summary>Free text (a note, a log message) with every detected span replaced; the same instance if none.</summary>
    public string RedactText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!SensitiveText.MightContain(text, _detectPii)) return text;

        var hits = new HitList();
        try
        {
            if (!SensitiveText.Find(text, _detectPii, ref hits)) return SensitiveText.Replacement(RedactionKind.Timeout);
            if (hits.Count == 0) return text;

            var builder = new StringBuilder(text.Length);
            var position = 0;
            foreach (var hit in hits.Items)
            {
                builder.Append(text, position, hit.Start - position).Append(SensitiveText.Replacement(hit.Kind));
                position = hit.End;
            }

            return builder.Append(text, position, text.Length - position).ToString();
        }
        finally
        {
            hits.Dispose();
        }
    }

    /// <summary>Writes the redacted value to <paramref name="emitter"/>; returns whether anything was replaced.</summary>
    private bool Visit(JsonEmitter emitter, JsonElement value, RedactionRules.PointerState? rules, int depth, bool canonical)
    {
        if (rules is { Redact: true }) return Replace(emitter, RedactionKind.Pointer);

        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                return depth >= MaxDepth ? Replace(emitter, RedactionKind.TooDeep) : VisitObject(emitter, value, rules, depth, canonical);
            case JsonValueKind.Array:
                return depth >= MaxDepth ? Replace(emitter, RedactionKind.TooDeep) : VisitArray(emitter, value, rules, depth, canonical);
            case JsonValueKind.String:
                return VisitString(emitter, JsonTokens.StringContent(value));
            case JsonValueKind.Number:
                var number = JsonMarshal.GetRawUtf8Value(value);
                if (_detectPii && SensitiveText.IsCardNumber(number)) return Replace(emitter, RedactionKind.Card);
                emitter.Literal(number);
                return false;
            case JsonValueKind.True:
            case JsonValueKind.False:
            case JsonValueKind.Null:
                emitter.Literal(JsonMarshal.GetRawUtf8Value(value));
                return false;
            default:
                emitter.Literal("null"u8);
                return false;
        }
    }

    private bool VisitObject(JsonEmitter emitter, JsonElement value, RedactionRules.PointerState? rules, int depth, bool canonical)
    {
        var changed = false;
        emitter.StartObject();
        if (canonical)
        {
            var members = ObjectMembers.RentSorted(value, out var count);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    changed |= VisitMember(emitter, members[i].Name, null, members[i].Value, rules, depth, canonical);
                }
            }
            finally
            {
                ObjectMembers.Return(members, count);
            }
        }
        else
        {
            Span<char> buffer = stackalloc char[StackChars];
            foreach (var property in value.EnumerateObject())
            {
                var raw = JsonMarshal.GetRawUtf8PropertyName(property);
                char[]? rented = null;
                var name = raw.Length <= StackChars ? buffer : (rented = ArrayPool<char>.Shared.Rent(raw.Length));
                try
                {
                    name = name[..JsonTokens.Decode(raw, name)];
                    changed |= VisitMember(emitter, name, raw, property.Value, rules, depth, canonical);
                }
                finally
                {
                    if (rented is not null) ArrayPool<char>.Shared.Return(rented);
                }

            }
        }

        emitter.EndObject();
        return changed;
    }

    /// <param name="rawName">The name's token text when it came straight from the input, so it can be copied.</param>
    private bool VisitMember(JsonEmitter emitter, ReadOnlySpan<char> name, ReadOnlySpan<byte> rawName, JsonElement value,
        RedactionRules.PointerState? rules, int parentDepth, bool canonical)
    {
        if (!rawName.IsEmpty && JsonEmitter.IsCanonical(rawName)) emitter.PropertyNameFromToken(rawName);
        else emitter.PropertyName(name);

        var next = rules?.Next(name);
        if (next is { Redact: true }) return Replace(emitter, RedactionKind.Pointer);
        if (value.ValueKind != JsonValueKind.Null && IsSecretName(name)) return Replace(emitter, RedactionKind.Secret);
        return Visit(emitter, value, next, parentDepth + 1, canonical);
    }

    private bool VisitArray(JsonEmitter emitter, JsonElement value, RedactionRules.PointerState? rules, int depth, bool canonical)
    {
        var changed = false;
        emitter.StartArray();
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            changed |= Visit(emitter, item, rules?.Next(index), depth + 1, canonical);
            index++;
        }

        emitter.EndArray();
        return changed;
    }

    private bool VisitString(JsonEmitter emitter, ReadOnlySpan<byte> content)
    {
        char[]? rented = null;
        var text = content.Length <= StackChars ? stackalloc char[StackChars] : (rented = ArrayPool<char>.Shared.Rent(content.Length));
        var hits = new HitList();
        try
        {
            text = text[..JsonTokens.Decode(content, text)];
            if (!SensitiveText.MightContain(text, _detectPii))
            {
                emitter.StringFromToken(content, text);
                return false;
            }

            if (!SensitiveText.Find(text, _detectPii, ref hits)) return Replace(emitter, RedactionKind.Timeout);
            if (hits.Count == 0)
            {
                emitter.StringFromToken(content, text);
                return false;
            }

            emitter.StartString();
            var position = 0;
            foreach (var hit in hits.Items)
            {
                emitter.StringContent(text[position..hit.Start]);
                emitter.StringContent(SensitiveText.Replacement(hit.Kind));
                position = hit.End;
            }

            emitter.StringContent(text[position..]);
            emitter.EndString();

            return true;
        }
        finally
        {
            hits.Dispose();
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    private static bool Replace(JsonEmitter emitter, RedactionKind kind)
    {
        emitter.String(SensitiveText.Replacement(kind));
        return true;
    }

    /// <summary>
    /// Whether the name, lowercased and without <c>- _ .</c> or spaces, ends in one of <see cref="SecretWords"/>: any
    /// non-null value under such a property is replaced whole.
    /// </summary>
    public static bool IsSecretName(ReadOnlySpan<char> name)
    {
        Span<char> tail = stackalloc char[16];
        var start = tail.Length;
        for (var i = name.Length - 1; i >= 0 && start > 0; i--)
        {
            var c = name[i];
            if (c is '-' or '_' or '.' or ' ') continue;
            if (!char.IsAsciiLetterOrDigit(c)) break;
            tail[--start] = char.ToLowerInvariant(c);
        }

        var normalized = tail[start..];
        foreach (var word in SecretWords)
        {
            if (normalized.EndsWith(word, StringComparison.Ordinal)) return true;
        }

        return false;
    }
}
