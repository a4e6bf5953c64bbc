using ControlPlane.Audit.Storage;

namespace ControlPlane.Tests.Audit;

/// <summary>One audit database for the contract tests: new store instances on it, and raw SQL to inspect or tamper with it.</summary>
public abstract class AuditTestDatabase
{
    /// <summary>A new store instance on this database (not migrated; the caller owns and disposes it).</summary>
    public abstract IAuditStore CreateStore();

    /// <summary>Runs a statement with named parameters (@name) and returns the rows affected.</summary>
    public abstract Task<int> ExecuteAsync(string sql, params (string Name, object Value)[] parameters);

    /// <summary>Runs a query with named parameters (@name) and returns every row's values (DBNull as null).</summary>
    public abstract Task<List<object?[]>> QueryAsync(string sql, params (string Name, object Value)[] parameters);
}
