namespace ControlPlane.SupportDesk;

/// <summary>Configuration for the sample support-desk tool server.</summary>
public sealed class SupportDeskOptions
{
    /// <summary>Path of the SQLite file. Created (with its directory) on first initialisation.</summary>
    public string DatabasePath { get; set; } = string.Empty;
}
