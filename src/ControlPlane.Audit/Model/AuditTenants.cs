namespace ControlPlane.Audit.Model;

/// <summary>Audit chains that belong to no tenant.</summary>
public static class AuditTenants
{
    /// <summary>
    /// The chain of operator actions that reach every tenant (a global kill switch, a server registered for all
    /// tenants). The underscore keeps it apart from real tenants, whose ids match <c>^[a-z0-9][a-z0-9-]{0,62}$</c>;
    /// only operators who see every tenant may read or verify it.
    /// </summary>
    public const string Cluster = "_cluster";
}
