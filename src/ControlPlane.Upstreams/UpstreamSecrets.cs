using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;

namespace ControlPlane.Upstreams;

/// <summary>An upstream's secret values: environment values and header values, by name.</summary>
internal sealed record UpstreamSecretValues(Dictionary<string, string> Env, Dictionary<string, string> Headers);

/// <summary>
/// Encrypts upstream credentials with ASP.NET Core Data Protection before they are stored, and decrypts them
/// only where a connection is opened. The key ring's persistence is the host's choice (the embedded default
/// keeps it under the data directory), so every silo that shares it can read what another stored.
/// </summary>
public sealed class UpstreamSecretProtector(IDataProtectionProvider provider)
{
    private readonly IDataProtector _protector = provider.CreateProtector("ControlPlane.Upstreams.Credentials.v1");

    public string? Protect(IReadOnlyDictionary<string, string> env, IReadOnlyDictionary<string, string> headers)
    {
        if (env.Count == 0 && headers.Count == 0) return null;
        var values = new UpstreamSecretValues(new(env, StringComparer.Ordinal), new(headers, StringComparer.OrdinalIgnoreCase));
        return _protector.Protect(JsonSerializer.Serialize(values, UpstreamJson.Default.UpstreamSecretValues));
    }

    /// <summary>The stored registration as a definition a connection can run.</summary>
    public UpstreamDefinition Reveal(UpstreamServerRegistration registration)
    {
        var secrets = registration.ProtectedSecrets is { } stored
            ? JsonSerializer.Deserialize(_protector.Unprotect(stored), UpstreamJson.Default.UpstreamSecretValues)!
            : new UpstreamSecretValues([], []);
        return new UpstreamDefinition(registration.Id, registration.TenantId, registration.Transport, registration.Command, registration.Args,
            registration.Url, secrets.Env, new Dictionary<string, string>(secrets.Headers, StringComparer.OrdinalIgnoreCase), "api")
        {
            TrustAnnotations = registration.TrustAnnotations,
        };
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(UpstreamSecretValues))]
internal sealed partial class UpstreamJson : System.Text.Json.Serialization.JsonSerializerContext;
