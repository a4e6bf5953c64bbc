using ControlPlane.Upstreams.Egress;
using ControlPlane.Upstreams.Stdio;

namespace ControlPlane.Upstreams;

/// <summary>One upstream server declared in configuration (<c>ControlPlane:Upstreams:Servers:{id}</c>).</summary>
public sealed class UpstreamServerOptions
{
    /// <summary>Limits the server to one tenant; absent, every tenant sees it (a configured id has one registration; the API adds per-tenant ones to ids it owns).</summary>
    public string? TenantId { get; set; }

    /// <summary><c>stdio</c> or <c>http</c>.</summary>
    public string Transport { get; set; } = "stdio";

    public string? Command { get; set; }

    public List<string> Args { get; set; } = [];

    public Dictionary<string, string> Env { get; set; } = new(StringComparer.Ordinal);

    public string? Url { get; set; }

    public Dictionary<string, string> Headers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the server's own tool annotations classify its tools (default false: every tool is an action until an operator classifies it read).</summary>
    public bool TrustAnnotations { get; set; }
}

/// <summary>The upstream gateway's settings, bound from <c>ControlPlane:Upstreams</c>.</summary>
public sealed class UpstreamOptions
{
    public const string SectionName = "ControlPlane:Upstreams";

    /// <summary>Servers declared in configuration, by id, beside those registered through the API.</summary>
    public Dictionary<string, UpstreamServerOptions> Servers { get; set; } = new(StringComparer.Ordinal);

    /// <summary>At most this many stdio server processes run on one silo; more registrations wait for a slot.</summary>
    public int MaxProcesses { get; set; } = 32;

    /// <summary>How long starting an upstream (process start and MCP initialize) may take.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait before restarting an upstream that exited or failed; it doubles up to <see cref="MaxRestartDelay"/>.</summary>
    public TimeSpan MinRestartDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxRestartDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A ping after a timed-out or cancelled call: an upstream that does not answer it within this is restarted as hung.</summary>
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often each silo checks the cluster's registry for changes made on other silos.</summary>
    public TimeSpan RegistryPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Which commands stdio upstreams may run (none by default).</summary>
    public UpstreamStdioOptions Stdio { get; set; } = new();

    /// <summary>Which addresses HTTP upstreams may reach (public unicast by default).</summary>
    public UpstreamEgressOptions Egress { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        foreach (var problem in Stdio.Validate().Concat(Egress.Validate())) yield return problem;

        if (MaxProcesses < 1) yield return $"{SectionName}:MaxProcesses must be at least 1.";
        if (ConnectTimeout <= TimeSpan.Zero) yield return $"{SectionName}:ConnectTimeout must be positive.";
        if (MinRestartDelay <= TimeSpan.Zero || MaxRestartDelay < MinRestartDelay) yield return $"{SectionName}:MinRestartDelay must be positive and not above MaxRestartDelay.";
        if (PingTimeout <= TimeSpan.Zero) yield return $"{SectionName}:PingTimeout must be positive.";
        if (RegistryPollInterval <= TimeSpan.Zero) yield return $"{SectionName}:RegistryPollInterval must be positive.";
        foreach (var (id, server) in Servers)
        {
            var definition = new UpstreamDefinition(id, server.TenantId, server.Transport, server.Command, [.. server.Args], server.Url,
                server.Env, server.Headers, "configuration");
            var errors = definition.Validate();
            foreach (var (field, messages) in errors)
            {
                foreach (var message in messages) yield return $"{SectionName}:Servers:{id}:{field}: {message}";
            }

            // A server declared in configuration is held to the same deployment policy as one registered through the API.
            if (errors.Count > 0) continue;
            if (definition.Transport == UpstreamDefinition.Stdio && Stdio.Refuse(definition.Command) is { } refused)
            {
                yield return $"{SectionName}:Servers:{id}:Command: {refused}.";
            }

            if (definition.Transport == UpstreamDefinition.Http && Egress.Validate().Any() is false
                && new EgressPolicy(Egress).RefuseLiteral(new Uri(definition.Url!)) is { } blocked)
            {
                yield return $"{SectionName}:Servers:{id}:Url: {blocked}.";
            }
        }
    }
}
