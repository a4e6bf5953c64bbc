namespace ControlPlane.Operators;

/// <summary>Operator roles. Viewing is separate from flipping, approving and reading audits.</summary>
public static class OperatorRoles
{
    public const string Viewer = "viewer";
    public const string Operator = "operator";
    public const string Approver = "approver";
    public const string Auditor = "auditor";
    public const string Admin = "admin";

    public static IReadOnlyList<string> All { get; } = [Viewer, Operator, Approver, Auditor, Admin];
}

/// <summary>
/// An operator account. <see cref="Tenants"/> empty means every tenant. The API key is stored as SHA-256
/// of a random secret; the console password (if any) as a PBKDF2 hash.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.OperatorAccount")]
public sealed record OperatorAccount(
    [property: Id(0)] string Id,
    [property: Id(1)] string[] Roles,
    [property: Id(2)] string[] Tenants,
    [property: Id(3)] byte[] KeyHash,
    [property: Id(4)] DateTimeOffset CreatedAt,
    [property: Id(5)] string? PasswordHash = null)
{
    public bool HasRole(string role) => Roles.Contains(OperatorRoles.Admin) || Roles.Contains(role);

    public bool CanSeeTenant(string tenantId) => Tenants.Length == 0 || Tenants.Contains(tenantId);

    public bool SeesAllTenants => Tenants.Length == 0;
}

[Alias("cp.IOperatorDirectoryGrain")]
public interface IOperatorDirectoryGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    [Alias("Upsert")]
    Task UpsertAsync(OperatorAccount account);

    /// <summary>Adds <paramref name="account"/> only while no operator exists (the production bootstrap); true if it was added.</summary>
    [Alias("AddFirst")]
    Task<bool> AddFirstAsync(OperatorAccount account);

    [Alias("Get"), AlwaysInterleave]
    Task<OperatorAccount?> GetAsync(string operatorId);

    [Alias("Count"), AlwaysInterleave]
    Task<int> CountAsync();
}
