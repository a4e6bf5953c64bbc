using System.Security.Cryptography;
using System.Text;
using ControlPlane.Audit.Redaction;

namespace ControlPlane.Guard.Authentication;

/// <summary>
/// Approval ids carry a MAC, like agent-token ids (<see cref="TokenIds"/>): <c>apr-</c>, 20 hex digits of randomness
/// and 16 of HMAC-SHA256 over them, keyed from the cluster's audit key. A confirmation token naming an id this
/// cluster never made is refused in memory, before any approval grain is activated or storage read.
/// </summary>
public sealed class ApprovalIds(ArgumentHasher hasher)
{
    private const string Prefix = "apr-";
    private const int RandomHexChars = 20;
    private const int TagHexChars = 16;

    private readonly byte[] _key = hasher.DeriveKey("controlplane/approval-id/v1");

    public string NewId()
    {
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(RandomHexChars / 2));
        return Prefix + random + Tag(random);
    }

    /// <summary>Whether this cluster made <paramref name="id"/> (constant-time comparison of the tag).</summary>
    public bool IsGenuine(string id)
    {
        if (id.Length != Prefix.Length + RandomHexChars + TagHexChars || !id.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        var random = id.AsSpan(Prefix.Length, RandomHexChars);
        foreach (var c in id.AsSpan(Prefix.Length)) if (!char.IsAsciiHexDigitLower(c)) return false;
        var expected = Encoding.ASCII.GetBytes(Tag(random.ToString()));
        var presented = Encoding.ASCII.GetBytes(id[(Prefix.Length + RandomHexChars)..]);
        return CryptographicOperations.FixedTimeEquals(expected, presented);
    }

    private string Tag(string random)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(random), mac);
        return Convert.ToHexStringLower(mac[..(TagHexChars / 2)]);
    }
}
