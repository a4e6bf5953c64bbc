using System.Text.RegularExpressions;

namespace ControlPlane;

/// <summary>The id grammars of the outward contract, in one place so the API, the grains and the guard agree.</summary>
public static partial class Identifiers
{
    /// <summary>Tenant ids: lowercase, URL and key safe.</summary>
    public static bool IsValidTenantId(string? value) => value is not null && TenantId().IsMatch(value);

    /// <summary>Agent, user, server and tool ids, and session ids: printable, no separators used in lookup keys.</summary>
    public static bool IsValidReference(string? value) => value is not null && Reference().IsMatch(value);

    /// <summary>
    /// MCP session ids as transports issue them (the SDK's are base64url, so they may start with '-' or '_'):
    /// visible ASCII without the '|' our lookup keys use.
    /// </summary>
    public static bool IsValidSessionId(string? value) => value is not null && SessionId().IsMatch(value);

    [GeneratedRegex(@"^[\x21-\x7B\x7D\x7E]{1,256}$", RegexOptions.CultureInvariant)]
    private static partial Regex SessionId();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex TenantId();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex Reference();
}
