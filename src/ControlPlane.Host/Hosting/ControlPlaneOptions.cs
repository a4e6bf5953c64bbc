namespace ControlPlane.Host.Hosting;

/// <summary>The host's settings, bound from the <c>ControlPlane</c> configuration section.</summary>
public sealed class ControlPlaneOptions
{
    public const string SectionName = "ControlPlane";

    /// <summary>Where the embedded default keeps its databases and the demo credentials.</summary>
    public string DataDir { get; set; } = "./data";

    public int SiloPort { get; set; } = 11111;

    public int GatewayPort { get; set; } = 30000;

    /// <summary>Set on a second (third...) embedded silo: the silo port of the first, which it joins.</summary>
    public int? PrimarySiloPort { get; set; }

    /// <summary><c>Embedded</c> (single machine, SQLite) is the only profile so far.</summary>
    public string Profile { get; set; } = "Embedded";

    /// <summary>Seed the demo tenant, agent, token and operator on first start (embedded profile only).</summary>
    public bool SeedDemo { get; set; } = true;

    /// <summary>
    /// Origins a browser may call from, besides loopback. The MCP spec asks servers to check Origin to
    /// stop DNS rebinding; hosts are checked by ASP.NET Core's <c>AllowedHosts</c>.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>Largest request body accepted on /mcp and /api/v1.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    public bool IsEmbedded => string.Equals(Profile, "Embedded", StringComparison.OrdinalIgnoreCase);

    public string FullDataDir => Path.GetFullPath(DataDir);

    internal IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDir)) yield return $"{SectionName}:DataDir must name a directory.";
        if (SiloPort is <= 0 or > 65535) yield return $"{SectionName}:SiloPort must be a TCP port.";
        if (GatewayPort is <= 0 or > 65535) yield return $"{SectionName}:GatewayPort must be a TCP port.";
        if (SiloPort == GatewayPort) yield return $"{SectionName}:SiloPort and {SectionName}:GatewayPort must differ.";
        if (PrimarySiloPort is { } primary && (primary <= 0 || primary > 65535)) yield return $"{SectionName}:PrimarySiloPort must be a TCP port.";
        if (!IsEmbedded) yield return $"{SectionName}:Profile '{Profile}' is not available yet; use 'Embedded'.";
        if (MaxRequestBodyBytes < 1024) yield return $"{SectionName}:MaxRequestBodyBytes must be at least 1024.";
        foreach (var origin in AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out _)) yield return $"{SectionName}:AllowedOrigins has '{origin}', which is not an absolute origin such as https://console.example.com.";
        }
    }
}
