using Microsoft.AspNetCore.Http;

namespace ControlPlane.Guard.Authentication;

internal static class BearerToken
{
    /// <summary>The token of an <c>Authorization: Bearer</c> header, or null.</summary>
    public static string? From(HttpRequest request)
    {
        var header = request.Headers.Authorization;
        if (header.Count != 1) return null;

        var value = header[0];
        const string prefix = "Bearer ";
        return value is not null && value.Length > prefix.Length && value.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)
            ? value[prefix.Length..].Trim()
            : null;
    }
}
