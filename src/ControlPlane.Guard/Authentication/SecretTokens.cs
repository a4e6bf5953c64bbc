using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace ControlPlane.Guard.Authentication;

/// <summary>
/// Bearer strings of the form <c>&lt;prefix&gt;_&lt;id&gt;_&lt;secret&gt;</c>: the id finds the record, the secret
/// proves possession. Only SHA-256 of the secret is ever stored. Prefixes tell agent tokens (<c>cpt</c>)
/// from operator keys (<c>cpo</c>) and confirmation tokens at a glance, in logs and in secret scanners.
/// </summary>
public static class SecretTokens
{
    public const string AgentPrefix = "cpt";
    public const string OperatorPrefix = "cpo";

    private const int IdBytes = 8;
    private const int SecretBytes = 32;
    private const int SecretChars = 43;

    /// <summary>Makes a new id and secret and the bearer string that carries them.</summary>
    public static (string Id, string Bearer, byte[] SecretHash) Create(string prefix, string? id = null)
    {
        id ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdBytes));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(SecretBytes));
        return (id, $"{prefix}_{id}_{secret}", Hash(secret));
    }

    /// <summary>Splits a bearer string. Rejects anything that is not exactly the expected shape.</summary>
    public static bool TryParse(string? bearer, string prefix, [NotNullWhen(true)] out string? id, [NotNullWhen(true)] out string? secret)
    {
        id = secret = null;
        if (bearer is null || bearer.Length > 256 || !bearer.StartsWith(prefix + "_", StringComparison.Ordinal)) return false;

        // The secret is fixed-length base64url, which may itself contain '_': split from the end.
        var rest = bearer.AsSpan(prefix.Length + 1);
        if (rest.Length < SecretChars + 2 || rest[^(SecretChars + 1)] != '_') return false;

        var idPart = rest[..^(SecretChars + 1)];
        var secretPart = rest[^SecretChars..];
        if (!Identifiers.IsValidReference(idPart.ToString()) || idPart.Contains('_')) return false;
        foreach (var c in secretPart)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) return false;
        }

        id = idPart.ToString();
        secret = secretPart.ToString();
        return true;
    }

    public static byte[] Hash(string secret) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret));

    /// <summary>Compares a presented secret with a stored hash in constant time.</summary>
    public static bool Matches(string secret, byte[] storedHash) =>
        CryptographicOperations.FixedTimeEquals(Hash(secret), storedHash);

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
