namespace ControlPlane.Grains;

/// <summary>Names of the grain storage providers ControlPlane's grains persist to.</summary>
public static class StorageNames
{
    /// <summary>Durable guard and identity state: kill switches, tokens, tenants, sessions, operators.</summary>
    public const string ControlPlane = "controlplane";
}
