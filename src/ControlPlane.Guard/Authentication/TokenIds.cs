using System.Security.Cryptography;
using System.Text;
using ControlPlane.Audit.Redaction;

namespace ControlPlane.Guard.Authentication;

public enum TokenIdKind
{
    /// <summary>Carries a tag this cluster made: worth looking up.</summary>
    Tagged,

    /// <summary>Has the tagged shape but a tag this cluster never made: refused without a lookup.</summary>
    Forged,

    /// <summary>An id minted before ids were tagged: looked up, within a per-silo budget for misses.</summary>
    Untagged,
}

/// <summary>
/// Agent-token ids carry a MAC: 16 hex digits of randomness and 16 of HMAC-SHA256 over them, keyed from the
/// cluster's audit key. A random id an attacker makes up fails the tag check in memory, so it never costs a
/// grain activation and a storage read (each unknown id would otherwise activate an AgentTokenGrain).
/// </summary>
public sealed class TokenIds
{
    private const int RandomHexChars = 16;
    private const int TagHexChars = 16;
    private const int UntaggedMissBurst = 50;
    private const double UntaggedMissesPerSecond = 10;

    private readonly byte[] _key;
    private readonly TimeProvider _time;
    private readonly Lock _budgetLock = new();
    private double _budget = UntaggedMissBurst;
    private long _budgetAt;

    public TokenIds(ArgumentHasher hasher, TimeProvider time)
    {
        _key = hasher.DeriveKey("controlplane/agent-token-id/v1");
        _time = time;
        _budgetAt = time.GetTimestamp();
    }

    public string NewId()
    {
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(RandomHexChars / 2));
        return random + Tag(random);
    }

    public TokenIdKind Classify(string id)
    {
        if (id.Length != RandomHexChars + TagHexChars || !id.All(char.IsAsciiHexDigitLower)) return TokenIdKind.Untagged;
        var expected = Encoding.ASCII.GetBytes(Tag(id[..RandomHexChars]));
        var presented = Encoding.ASCII.GetBytes(id[RandomHexChars..]);
        return CryptographicOperations.FixedTimeEquals(expected, presented) ? TokenIdKind.Tagged : TokenIdKind.Forged;
    }

    /// <summary>
    /// Whether an untagged id not cached on this silo may be looked up now: a small token bucket, so
    /// made-up untagged ids cost at most a few activations a second however fast they arrive.
    /// </summary>
    public bool TryAffordUntaggedLookup()
    {
        lock (_budgetLock)
        {
            var now = _time.GetTimestamp();
            _budget = Math.Min(UntaggedMissBurst, _budget + _time.GetElapsedTime(_budgetAt, now).TotalSeconds * UntaggedMissesPerSecond);
            _budgetAt = now;
            if (_budget < 1) return false;
            _budget -= 1;
            return true;
        }
    }

    private string Tag(string random)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(random), mac);
        return Convert.ToHexStringLower(mac[..(TagHexChars / 2)]);
    }
}
