namespace ControlPlane.Tests.Security;

/// <summary>
/// How an operation relates to tenants, which decides what a tenant-limited operator gets: the authorization
/// matrices of the REST API and of the console share it, so both judge an operation by the same rule.
/// </summary>
internal enum Reach
{
    /// <summary>Names one tenant (path, query or body): a limited operator gets the case's other-tenant outcome for a tenant it lacks.</summary>
    Tenant,

    /// <summary>Affects every tenant: only an all-tenant operator may.</summary>
    AllTenants,

    /// <summary>Lists across tenants: a limited operator succeeds and sees only its own tenants' items.</summary>
    Listing,

    /// <summary>Touches no tenant's data (drills run on their own synthetic tenant): the role alone decides.</summary>
    NoTenant,
}
