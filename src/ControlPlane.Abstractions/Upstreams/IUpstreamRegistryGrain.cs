namespace ControlPlane.Upstreams;

/// <summary>
/// An upstream MCP server an operator registered. Secrets (environment values, header values) travel and
/// rest only inside <see cref="ProtectedSecrets"/>, encrypted with the cluster's Data Protection key ring
/// before they leave the silo that received them; the names alone are kept in clear so they can be listed.
/// <see cref="TrustAnnotations"/>: whether the server's own tool annotations classify its tools (off: every tool is an action
/// until an operator classifies it read).
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.UpstreamServerRegistration")]
public sealed record UpstreamServerRegistration(
    [property: Id(0)] string Id,
    [property: Id(1)] string? TenantId,
    [property: Id(2)] string Transport,
    [property: Id(3)] string? Command,
    [property: Id(4)] string[] Args,
    [property: Id(5)] string? Url,
    [property: Id(6)] string[] EnvNames,
    [property: Id(7)] string[] HeaderNames,
    [property: Id(8)] string? ProtectedSecrets,
    [property: Id(9)] string RegisteredBy,
    [property: Id(10)] DateTimeOffset RegisteredAt,
    [property: Id(11)] bool TrustAnnotations = false)
{
    /// <summary>
    /// What names this registration among those of its id: the id alone for the global one, <c>id@tenant</c> for a
    /// tenant's own (neither part can hold an '@'). One process, one catalog entry and one circuit per key.
    /// </summary>
    public string Key => KeyOf(Id, TenantId);

    public static string KeyOf(string id, string? tenantId) => tenantId is null ? id : id + "@" + tenantId;
}

/// <summary>Every registration at one version; the version grows with each change so silos can poll cheaply.</summary>
[GenerateSerializer, Immutable, Alias("cp.UpstreamRegistrySnapshot")]
public sealed record UpstreamRegistrySnapshot(
    [property: Id(0)] long Version,
    [property: Id(1)] UpstreamServerRegistration[] Servers);

/// <summary>The cluster's registry of upstream MCP servers. One instance: registrations are few and change rarely.</summary>
[Alias("cp.IUpstreamRegistryGrain")]
public interface IUpstreamRegistryGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    /// <summary>Adds or replaces the registration of its id for its tenant (or the global one). Returns whether it was new.</summary>
    [Alias("Register")]
    Task<bool> RegisterAsync(UpstreamServerRegistration registration);

    /// <summary>Removes the registration of an id for one tenant, or the global one (<paramref name="tenantId"/> null). Returns the removed one, or null if there was none.</summary>
    [Alias("RemoveRegistration")]
    Task<UpstreamServerRegistration?> RemoveAsync(string id, string? tenantId);

    [Alias("Get"), AlwaysInterleave]
    Task<UpstreamRegistrySnapshot> GetAsync();

    [Alias("GetVersion"), AlwaysInterleave]
    Task<long> GetVersionAsync();
}
