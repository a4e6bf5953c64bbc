namespace ControlPlane.Host.Drills;

/// <summary>Kill-switch drills, bound from <c>ControlPlane:Drills</c>.</summary>
public sealed class DrillOptions
{
    public const string SectionName = "ControlPlane:Drills";

    /// <summary>How often every scheduled level is drilled. Zero switches the schedule off (drills still run on demand).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Delay before the first scheduled run when a level has never been drilled.</summary>
    public TimeSpan FirstRunDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A level whose last drill is older than this is reported stale.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromDays(90);

    /// <summary>The synthetic tenant drills run in. Nothing real should live there.</summary>
    public string TenantId { get; set; } = "cp-drill";

    /// <summary>
    /// The MCP endpoint drills call. Default: this silo's own listening address over loopback. Set it when
    /// the host listens on a name that loopback cannot reach; the address must pass AllowedHosts.
    /// </summary>
    public string? McpUrl { get; set; }

    /// <summary>Longest a single drill may take before it is abandoned (its switch is still cleared).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(20);

    internal IEnumerable<string> Validate()
    {
        if (Interval < TimeSpan.Zero || (Interval > TimeSpan.Zero && Interval < TimeSpan.FromMinutes(1)))
        {
            yield return $"{SectionName}:Interval must be zero (off) or at least 00:01:00 (Orleans reminders tick at most once a minute).";
        }

        if (FirstRunDelay < TimeSpan.FromSeconds(1)) yield return $"{SectionName}:FirstRunDelay must be at least 00:00:01.";
        if (StaleAfter <= TimeSpan.Zero) yield return $"{SectionName}:StaleAfter must be positive.";
        if (!Identifiers.IsValidTenantId(TenantId)) yield return $"{SectionName}:TenantId must match ^[a-z0-9][a-z0-9-]{{0,62}}$.";
        if (McpUrl is not null && !Uri.TryCreate(McpUrl, UriKind.Absolute, out _)) yield return $"{SectionName}:McpUrl must be an absolute URL such as http://127.0.0.1:8080/mcp.";
        if (Timeout < TimeSpan.FromSeconds(1)) yield return $"{SectionName}:Timeout must be at least 00:00:01.";
    }
}
