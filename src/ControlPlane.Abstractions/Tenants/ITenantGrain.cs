using ControlPlane.Tokens;

namespace ControlPlane.Tenants;

[GenerateSerializer, Immutable, Alias("cp.TenantInfo")]
public sealed record TenantInfo(
    [property: Id(0)] string Id,
    [property: Id(1)] string Name,
    [property: Id(2)] DateTimeOffset CreatedAt);

/// <summary>The tenant directory: which tenants exist. One instance; tenants are few and change rarely.</summary>
[Alias("cp.ITenantDirectoryGrain")]
public interface ITenantDirectoryGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    /// <summary>Registers a tenant. Returns the stored tenant and whether this call created it.</summary>
    [Alias("Create")]
    Task<(TenantInfo Tenant, bool Created)> CreateAsync(string id, string name, DateTimeOffset at);

    [Alias("Get"), AlwaysInterleave]
    Task<TenantInfo?> GetAsync(string id);

    [Alias("List"), AlwaysInterleave]
    Task<TenantInfo[]> ListAsync();
}

/// <summary>
/// One tenant: its agents, users and the index of tokens minted for it. Token secrets live nowhere;
/// token records live in <see cref="IAgentTokenGrain"/>.
/// </summary>
[Alias("cp.ITenantGrain")]
public interface ITenantGrain : IGrainWithStringKey
{
    [Alias("AddToken")]
    Task AddTokenAsync(AgentTokenInfo token);

    [Alias("MarkTokenRevoked")]
    Task MarkTokenRevokedAsync(string tokenId, DateTimeOffset at);

    [Alias("ListTokens"), AlwaysInterleave]
    Task<AgentTokenInfo[]> ListTokensAsync();

    [Alias("ListAgents"), AlwaysInterleave]
    Task<string[]> ListAgentsAsync();

    [Alias("ListUsers"), AlwaysInterleave]
    Task<string[]> ListUsersAsync();

    /// <summary>Days of audit records kept for this tenant; null means the deployment's default.</summary>
    [Alias("GetAuditRetention"), AlwaysInterleave]
    Task<int?> GetAuditRetentionAsync();

    [Alias("SetAuditRetention")]
    Task SetAuditRetentionAsync(int? days);
}
