using System.Security.Cryptography;
using System.Text.Json;

namespace ControlPlane.Audit.Redaction;

/// <summary>
/// Keyed hashes of tool-call arguments: lowercase hex HMAC-SHA256 over the UTF-8 <see cref="CanonicalJson"/>.
/// Equal arguments hash equal whatever their key order, so calls can be correlated in the audit trail without
/// storing what was redacted; the key stops anyone without it from confirming a guess such as an e-mail address.
/// </summary>
/// <remarks>Thread-safe: the key is copied once and only the static <see cref="HMACSHA256.HashData(byte[], byte[])"/> family is used.</remarks>
public sealed class ArgumentHasher
{
    public const int MinimumKeyBytes = 32;

    private readonly byte[] _key;

    public ArgumentHasher(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length < MinimumKeyBytes)
        {
            throw new ArgumentException($"The audit hash key must be at least {MinimumKeyBytes} bytes.", nameof(key));
        }

        _key = (byte[])key.Clone();
    }

    /// <summary>
    /// A key for another purpose, derived from this one (HMAC of the purpose's name), so every silo that
    /// shares the audit key shares it too without a second secret to distribute.
    /// </summary>
    public byte[] DeriveKey(string purpose) => HMACSHA256.HashData(_key, System.Text.Encoding.UTF8.GetBytes(purpose));

    /// <summary>Hash of the arguments; null hashes like an empty object.</summary>
    public string Hash(IDictionary<string, JsonElement>? arguments)
    {
        var emitter = JsonEmitter.Rent();
        try
        {
            CanonicalJson.WriteTo(emitter, arguments);
            return HashUtf8(emitter.Written);
        }
        finally
        {
            emitter.Return();
        }
    }

    public string Hash(JsonElement value)
    {
        var emitter = JsonEmitter.Rent();
        try
        {
            CanonicalJson.WriteTo(emitter, value);
            return HashUtf8(emitter.Written);
        }
        finally
        {
            emitter.Return();
        }
    }

    private string HashUtf8(ReadOnlySpan<byte> canonical)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, canonical, mac);
        return Convert.ToHexStringLower(mac);
    }
}
