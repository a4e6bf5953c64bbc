using ControlPlane.Host.Cluster;

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

    /// <summary>
    /// <c>Embedded</c> (the default: one machine, localhost clustering, SQLite) or <c>Production</c> (clustering,
    /// grain state, reminders and audit on the PostgreSQL named by <c>ConnectionStrings:ControlPlane</c>).
    /// </summary>
    public string Profile { get; set; } = EmbeddedProfile;

    /// <summary>Production: the Orleans cluster id; silos with the same id and database form one cluster.</summary>
    public string ClusterId { get; set; } = "controlplane";

    /// <summary>Production: the Orleans service id, which keys grain state and reminders in the database.</summary>
    public string ServiceId { get; set; } = "controlplane";

    /// <summary>Production: the address other silos and clients reach this silo at (default: a local address of the machine).</summary>
    public string? AdvertisedIPAddress { get; set; }

    /// <summary>Production on Kubernetes: let Orleans' Kubernetes hosting take the pod's address and watch pod deletions.</summary>
    public bool Kubernetes { get; set; }

    /// <summary>Production: the first admin operator, created only while no operator exists.</summary>
    public BootstrapOptions Bootstrap { get; set; } = new();

    /// <summary>Silo-to-silo settings (<c>ControlPlane:Cluster:*</c>): mutual TLS between silos.</summary>
    public ClusterSecurityOptions Cluster { get; set; } = new();

    /// <summary>Seed the demo tenant, agent, token and operator on first start (embedded profile only).</summary>
    public bool SeedDemo { get; set; } = true;

    /// <summary>
    /// Origins a browser may call from, besides loopback. The MCP spec asks servers to check Origin to
    /// stop DNS rebinding; hosts are checked by ASP.NET Core's <c>AllowedHosts</c>.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>Largest request body accepted on /mcp and /api/v1.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>When idle MCP sessions give up their live state (<c>ControlPlane:Sessions</c>).</summary>
    public Mcp.SessionOptions Sessions { get; set; } = new();

    /// <summary>How a silo stops: the drain before it does (<c>ControlPlane:Shutdown</c>).</summary>
    public Shutdown.ShutdownOptions Shutdown { get; set; } = new();

    public const string EmbeddedProfile = "Embedded";
    public const string ProductionProfile = "Production";

    /// <summary>The connection string key (<c>ConnectionStrings:ControlPlane</c>) the production profile needs.</summary>
    public const string ConnectionStringName = "ControlPlane";

    public bool IsEmbedded => string.Equals(Profile, EmbeddedProfile, StringComparison.OrdinalIgnoreCase);

    public bool IsProduction => string.Equals(Profile, ProductionProfile, StringComparison.OrdinalIgnoreCase);

    public string FullDataDir => Path.GetFullPath(DataDir);

    internal IEnumerable<string> Validate(string? connectionString = null)
    {
        if (string.IsNullOrWhiteSpace(DataDir)) yield return $"{SectionName}:DataDir must name a directory.";
        if (SiloPort is <= 0 or > 65535) yield return $"{SectionName}:SiloPort must be a TCP port.";
        if (GatewayPort is <= 0 or > 65535) yield return $"{SectionName}:GatewayPort must be a TCP port.";
        if (SiloPort == GatewayPort) yield return $"{SectionName}:SiloPort and {SectionName}:GatewayPort must differ.";
        if (PrimarySiloPort is { } primary && (primary <= 0 || primary > 65535)) yield return $"{SectionName}:PrimarySiloPort must be a TCP port.";
        if (!IsEmbedded && !IsProduction) yield return $"{SectionName}:Profile '{Profile}' is unknown; use '{EmbeddedProfile}' or '{ProductionProfile}'.";
        if (IsProduction)
        {
            foreach (var problem in ValidateProduction(connectionString)) yield return problem;
        }
        foreach (var problem in Cluster.Tls.Validate($"{SectionName}:Cluster:Tls")) yield return problem;
        foreach (var problem in Sessions.Validate($"{SectionName}:Sessions")) yield return problem;
        foreach (var problem in Shutdown.Validate($"{SectionName}:Shutdown")) yield return problem;
        if (MaxRequestBodyBytes < 1024) yield return $"{SectionName}:MaxRequestBodyBytes must be at least 1024.";
        foreach (var origin in AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out _)) yield return $"{SectionName}:AllowedOrigins has '{origin}', which is not an absolute origin such as https://console.example.com.";
        }
    }

    private IEnumerable<string> ValidateProduction(string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            yield return $"ConnectionStrings:{ConnectionStringName} is required when {SectionName}:Profile is {ProductionProfile}: the PostgreSQL database that holds the cluster's membership, grain state, reminders and (by default) the audit trail.";
        }
        else if (!IsValidConnectionString(connectionString))
        {
            yield return $"ConnectionStrings:{ConnectionStringName} is not a valid PostgreSQL connection string (Host=...;Database=...;Username=...;Password=...).";
        }

        if (string.IsNullOrWhiteSpace(ClusterId)) yield return $"{SectionName}:ClusterId must not be empty.";
        if (string.IsNullOrWhiteSpace(ServiceId)) yield return $"{SectionName}:ServiceId must not be empty.";
        if (PrimarySiloPort is not null) yield return $"{SectionName}:PrimarySiloPort is for embedded silos only; production silos find each other through ConnectionStrings:{ConnectionStringName}.";
        if (AdvertisedIPAddress is { Length: > 0 } address && !System.Net.IPAddress.TryParse(address, out _))
        {
            yield return $"{SectionName}:AdvertisedIPAddress '{address}' is not an IP address.";
        }

        if (!Cluster.Tls.Enabled)
        {
            yield return $"{SectionName}:Cluster:Tls:CertificatePath (or {SectionName}:Cluster:Tls:Thumbprint) is required when {SectionName}:Profile is {ProductionProfile}: " +
                "without mutual TLS anyone who reaches a silo's port can call any grain (make an operator, clear a kill switch). " +
                "Make a cluster certificate with `ControlPlane.Host cluster new-certificate --out <dir>` (ops/runbook.md, section 7).";
        }

        foreach (var problem in Bootstrap.Validate($"{SectionName}:Bootstrap")) yield return problem;
    }

    private static bool IsValidConnectionString(string connectionString)
    {
        try
        {
            return new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Host is { Length: > 0 };
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

/// <summary>
/// Production has no demo seeding, so the first admin comes from configuration: the hash of a key made with
/// <c>ControlPlane.Host operators new-key</c>. The key itself never appears in configuration.
/// </summary>
public sealed class BootstrapOptions
{
    /// <summary>Id of the first admin operator (the id is also part of the key: <c>cpo_&lt;id&gt;_&lt;secret&gt;</c>).</summary>
    public string AdminId { get; set; } = "admin";

    /// <summary>SHA-256 of the key's secret, as <c>sha256:&lt;64 hex digits&gt;</c>; unset means no bootstrap.</summary>
    public string? AdminKeyHash { get; set; }

    internal byte[]? KeyHashBytes => AdminKeyHash is { Length: 71 } text && text.StartsWith(HashPrefix, StringComparison.Ordinal)
        ? Convert.FromHexString(text.AsSpan(HashPrefix.Length))
        : null;

    internal const string HashPrefix = "sha256:";

    internal static string FormatHash(byte[] hash) => HashPrefix + Convert.ToHexStringLower(hash);

    internal IEnumerable<string> Validate(string section)
    {
        if (!Identifiers.IsValidReference(AdminId) || AdminId.Contains('_'))
        {
            yield return $"{section}:AdminId '{AdminId}' is not a valid operator id (letters, digits and dashes).";
        }

        if (AdminKeyHash is { Length: > 0 } && !IsHash(AdminKeyHash))
        {
            yield return $"{section}:AdminKeyHash must be 'sha256:' followed by 64 hex digits, as printed by `ControlPlane.Host operators new-key`.";
        }
    }

    private static bool IsHash(string text) =>
        text.Length == 71 && text.StartsWith(HashPrefix, StringComparison.Ordinal) && text.AsSpan(HashPrefix.Length).ContainsAnyExcept("0123456789abcdefABCDEF") == false;
}
