namespace ControlPlane.Audit.Redaction;

/// <summary>Configuration for <see cref="Redactor"/>.</summary>
public sealed class RedactionOptions
{
    /// <summary>
    /// Per-tool JSON pointers whose values are always replaced by <c>[REDACTED]</c>, keyed by
    /// <c>serverId/toolName</c>. Pointers follow RFC 6901 (<c>~0</c> is <c>~</c>, <c>~1</c> is <c>/</c>) with one
    /// addition: a <c>*</c> segment matches any property or array item. See <see cref="RedactionRules"/>.
    /// </summary>
    public Dictionary<string, List<string>> Pointers { get; set; } = new();

    /// <summary>
    /// Look for e-mail addresses, phone numbers and payment cards in every string. Secrets (bearer tokens, JWTs,
    /// API keys, secret-named properties) and pointer rules apply either way.
    /// </summary>
    public bool DetectPii { get; set; } = true;
}
