using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace ControlPlane.Audit.Redaction;

/// <summary>
/// Writes compact JSON with one fixed escaping rule: only <c>"</c>, <c>\</c> and U+0000–U+001F are escaped
/// (as <c>\" \\ \b \f \n \r \t</c> or lowercase <c>\u00xx</c>), everything else is written as UTF-8, and an
/// unpaired surrogate becomes U+FFFD. That is the string rule of RFC 8785 (JCS). It is used instead of a
/// <see cref="System.Text.Encodings.Web.JavaScriptEncoder"/> because the built-in encoders escape every
/// non-BMP character and any code point the runtime's Unicode tables call unassigned, so their output, and
/// every hash over it, could change with a runtime upgrade.
/// </summary>
/// <remarks>One comma flag is enough state: a value or an end bracket sets it, a start bracket or a name clears it.</remarks>
internal sealed class JsonEmitter
{
    private const int KeepCapacity = 1 << 20;

    [ThreadStatic]
    private static JsonEmitter? t_cached;

    private readonly ArrayBufferWriter<byte> _buffer = new(1024);
    private bool _needComma;
    private bool _inUse;

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    /// <summary>A per-thread emitter (every use is synchronous), or a fresh one if this thread's is busy.</summary>
    public static JsonEmitter Rent()
    {
        var emitter = t_cached;
        if (emitter is null || emitter._inUse)
        {
            emitter = new JsonEmitter();
            t_cached ??= emitter;
        }

        emitter._inUse = true;
        emitter._needComma = false;
        emitter._buffer.ResetWrittenCount();
        return emitter;
    }

    public void Return()
    {
        _inUse = false;
        // Do not pin a huge buffer to the thread after one huge document.
        if (_buffer.Capacity > KeepCapacity && ReferenceEquals(t_cached, this)) t_cached = null;
    }

    public void StartObject() => Open((byte)'{');

    public void StartArray() => Open((byte)'[');

    public void EndObject() => Close((byte)'}');

    public void EndArray() => Close((byte)']');

    public void PropertyName(ReadOnlySpan<char> name)
    {
        Comma();
        WriteQuoted(name);
        Byte((byte)':');
        _needComma = false;
    }

    /// <summary>A property name given as the raw text of its token (unescaped, valid UTF-8).</summary>
    public void PropertyNameFromToken(ReadOnlySpan<byte> content)
    {
        Comma();
        Byte((byte)'"');
        Bytes(content);
        Bytes("\":"u8);
        _needComma = false;
    }

    public void String(ReadOnlySpan<char> value)
    {
        Comma();
        WriteQuoted(value);
        _needComma = true;
    }

    /// <summary>Starts a string value written in pieces with <see cref="StringContent"/>.</summary>
    public void StartString()
    {
        Comma();
        Byte((byte)'"');
    }

    public void StringContent(ReadOnlySpan<char> value) => WriteEscaped(value);

    public void EndString()
    {
        Byte((byte)'"');
        _needComma = true;
    }

    /// <summary>A string value given both as its token text and already decoded: copies the token if it can.</summary>
    public void StringFromToken(ReadOnlySpan<byte> content, ReadOnlySpan<char> decoded)
    {
        if (IsCanonical(content)) StringFromCanonicalToken(content);
        else String(decoded);
    }

    /// <summary>A string value given as the raw text between the quotes of its JSON token.</summary>
    public void StringFromToken(ReadOnlySpan<byte> content)
    {
        if (IsCanonical(content))
        {
            StringFromCanonicalToken(content);
            return;
        }

        char[]? rented = null;
        var chars = content.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(content.Length));
        try
        {
            var length = JsonTokens.Decode(content, chars);
            String(chars[..length]);
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Unescaped, valid UTF-8 token text is already in the canonical form: the parser rejects raw control
    /// characters and quotes, so there is nothing to change. Anything else goes through a decode.
    /// </summary>
    public static bool IsCanonical(ReadOnlySpan<byte> content) => content.IndexOf((byte)'\\') < 0 && Utf8.IsValid(content);

    private void StringFromCanonicalToken(ReadOnlySpan<byte> content)
    {
        Comma();
        Byte((byte)'"');
        Bytes(content);
        Byte((byte)'"');
        _needComma = true;
    }

    /// <summary>A number, <c>true</c>, <c>false</c> or <c>null</c>, as raw text.</summary>
    public void Literal(ReadOnlySpan<byte> text)
    {
        Comma();
        Bytes(text);
        _needComma = true;
    }

    private void Open(byte bracket)
    {
        Comma();
        Byte(bracket);
        _needComma = false;
    }

    private void Close(byte bracket)
    {
        Byte(bracket);
        _needComma = true;
    }

    private void Comma()
    {
        if (_needComma) Byte((byte)',');
    }

    private void Byte(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    private void Bytes(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_buffer.GetSpan(value.Length));
        _buffer.Advance(value.Length);
    }

    private void WriteQuoted(ReadOnlySpan<char> value)
    {
        Byte((byte)'"');
        WriteEscaped(value);
        Byte((byte)'"');
    }

    private void WriteEscaped(ReadOnlySpan<char> value)
    {
        while (!value.IsEmpty)
        {
            var stop = value.IndexOfAny(JsonTokens.MustEscape);
            var plain = stop < 0 ? value : value[..stop];
            if (!plain.IsEmpty)
            {
                // Escapable characters are ASCII, so cutting there never splits a surrogate pair; a lone
                // surrogate inside the run becomes U+FFFD.
                var destination = _buffer.GetSpan(checked(plain.Length * 3));
                Utf8.FromUtf16(plain, destination, out _, out var written, replaceInvalidSequences: true);
                _buffer.Advance(written);
            }

            if (stop < 0) break;
            Escape(value[stop]);
            value = value[(stop + 1)..];
        }
    }

    private void Escape(char c)
    {
        var span = _buffer.GetSpan(6);
        span[0] = (byte)'\\';
        var shortForm = c switch { '"' => '"', '\\' => '\\', '\b' => 'b', '\f' => 'f', '\n' => 'n', '\r' => 'r', '\t' => 't', _ => '\0' };
        if (shortForm != '\0')
        {
            span[1] = (byte)shortForm;
            _buffer.Advance(2);
            return;
        }

        span[1] = (byte)'u';
        span[2] = (byte)'0';
        span[3] = (byte)'0';
        span[4] = (byte)"0123456789abcdef"[c >> 4];
        span[5] = (byte)"0123456789abcdef"[c & 0xF];
        _buffer.Advance(6);
    }
}

/// <summary>Reading token text out of a <see cref="JsonElement"/> without the exceptions of <c>GetString</c>.</summary>
internal static class JsonTokens
{
    public static readonly SearchValues<char> MustEscape = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f");

    /// <summary>The text between the quotes of a string token, still escaped.</summary>
    public static ReadOnlySpan<byte> StringContent(JsonElement element)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element);
        return raw.Length >= 2 ? raw[1..^1] : [];
    }

    /// <summary>A property name as a string, decoded like <see cref="Decode"/> (so it never throws).</summary>
    public static string PropertyName(JsonProperty property) => ToString(JsonMarshal.GetRawUtf8PropertyName(property));

    /// <summary>Token text (still escaped) as a string, decoded like <see cref="Decode"/>.</summary>
    public static string ToString(ReadOnlySpan<byte> content)
    {
        if (content.IsEmpty) return string.Empty;
        char[]? rented = null;
        var chars = content.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(content.Length));
        try
        {
            return new string(chars[..Decode(content, chars)]);
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Unescapes token text into <paramref name="destination"/> (at least as long as <paramref name="content"/>;
    /// the decoded text is never longer). <c>JsonElement.GetString</c> throws on an escaped lone surrogate
    /// (<c>"\ud800"</c>) and on invalid UTF-8, both of which the parser accepts; here invalid UTF-8 becomes
    /// U+FFFD and a lone surrogate is kept, so no input makes this throw.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> content, Span<char> destination)
    {
        var length = 0;
        while (!content.IsEmpty)
        {
            var slash = content.IndexOf((byte)'\\');
            var plain = slash < 0 ? content : content[..slash];
            Utf8.ToUtf16(plain, destination[length..], out _, out var written, replaceInvalidSequences: true);
            length += written;
            if (slash < 0) break;

            content = content[slash..];
            if (content.Length < 2)
            {
                destination[length++] = '\uFFFD';
                break;
            }

            var consumed = 2;
            char c;
            if (content[1] == (byte)'u')
            {
                if (content.Length >= 6 && TryHex(content.Slice(2, 4), out var code))
                {
                    c = (char)code;
                    consumed = 6;
                }
                else
                {
                    c = '\uFFFD';
                }
            }
            else
            {
                c = content[1] switch
                {
                    (byte)'"' => '"',
                    (byte)'\\' => '\\',
                    (byte)'/' => '/',
                    (byte)'b' => '\b',
                    (byte)'f' => '\f',
                    (byte)'n' => '\n',
                    (byte)'r' => '\r',
                    (byte)'t' => '\t',
                    _ => '\uFFFD',
                };
            }

            destination[length++] = c;
            content = content[consumed..];
        }

        return length;
    }

    private static bool TryHex(ReadOnlySpan<byte> digits, out int value)
    {
        value = 0;
        foreach (var d in digits)
        {
            var nibble = d switch
            {
                >= (byte)'0' and <= (byte)'9' => d - '0',
                >= (byte)'a' and <= (byte)'f' => d - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => d - 'A' + 10,
                _ => -1,
            };
            if (nibble < 0) return false;
            value = (value << 4) | nibble;
        }

        return true;
    }
}

/// <summary>An object member for canonical ordering; <see cref="Order"/> is its position in the input.</summary>
internal readonly record struct Member(string Name, JsonElement Value, int Order);

internal static class ObjectMembers
{
    /// <summary>
    /// The members of <paramref name="value"/> sorted by ordinal UTF-16 order of their names, with only the
    /// last of any duplicate name kept. The array comes from the pool: give it back with <see cref="Return"/>.
    /// </summary>
    public static Member[] RentSorted(JsonElement value, out int count)
    {
        var members = ArrayPool<Member>.Shared.Rent(8);
        var n = 0;
        foreach (var property in value.EnumerateObject())
        {
            if (n == members.Length)
            {
                var larger = ArrayPool<Member>.Shared.Rent(n * 2);
                members.AsSpan(0, n).CopyTo(larger);
                Return(members, n);
                members = larger;
            }

            members[n] = new Member(JsonTokens.PropertyName(property), property.Value, n);
            n++;
        }

        var span = members.AsSpan(0, n);
        span.Sort(default(ByNameThenOrder));

        // Sorted by name then input order, so the last of each run of equal names is the one to keep.
        count = 0;
        for (var i = 0; i < n; i++)
        {
            if (i + 1 < n && string.Equals(span[i].Name, span[i + 1].Name, StringComparison.Ordinal)) continue;
            span[count++] = span[i];
        }

        return members;
    }

    public static void Return(Member[] members, int used)
    {
        // Clear what was used so the pool does not keep documents alive.
        members.AsSpan(0, Math.Min(used, members.Length)).Clear();
        ArrayPool<Member>.Shared.Return(members);
    }

    private readonly struct ByNameThenOrder : IComparer<Member>
    {
        public int Compare(Member x, Member y)
        {
            var byName = string.CompareOrdinal(x.Name, y.Name);
            return byName != 0 ? byName : x.Order.CompareTo(y.Order);
        }
    }
}
