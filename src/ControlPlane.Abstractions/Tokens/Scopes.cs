using System.Text.RegularExpressions;

namespace ControlPlane.Tokens;

/// <summary>
/// The token scope grammar: <c>server:&lt;serverId&gt;:read</c>, <c>server:&lt;serverId&gt;:write</c>,
/// <c>tool:&lt;serverId&gt;/&lt;toolName&gt;</c>. Validated when a token is minted.
/// </summary>
public static partial class Scopes
{
    public static bool IsValid(string? scope) => scope is not null && Grammar().IsMatch(scope);

    [GeneratedRegex(@"^(server:[A-Za-z0-9][A-Za-z0-9._-]{0,63}:(read|write)|tool:[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,127})$", RegexOptions.CultureInvariant)]
    private static partial Regex Grammar();
}
