namespace ControlPlane.Upstreams;

/// <summary>
/// An upstream server with its secrets in clear, as a connection needs it. Lives only in memory: it is
/// never serialized, logged or returned (its <see cref="ToString"/> names no secret).
/// </summary>
public sealed class UpstreamDefinition(
    string id,
    string? tenantId,
    string transport,
    string? command,
    string[] args,
    string? url,
    IReadOnlyDictionary<string, string> env,
    IReadOnlyDictionary<string, string> headers,
    string source)
{
    public const string Stdio = "stdio";
    public const string Http = "http";

    public string Id { get; } = id;

    /// <summary>The tenant this registration serves alone, in place of any global one of the same id; null for every tenant.</summary>
    public string? TenantId { get; } = tenantId;

    /// <summary>Names this registration among those of its id (see <see cref="UpstreamServerRegistration.Key"/>).</summary>
    public string Key => UpstreamServerRegistration.KeyOf(Id, TenantId);

    public string Transport { get; } = transport;

    public string? Command { get; } = command;

    public string[] Args { get; } = args;

    public string? Url { get; } = url;

    public IReadOnlyDictionary<string, string> Env { get; } = env;

    public IReadOnlyDictionary<string, string> Headers { get; } = headers;

    /// <summary>
    /// Whether this server's own tool annotations (<c>readOnlyHint</c>) classify its tools. Off by default: an upstream is
    /// untrusted, and a destructive tool it marks read-only would otherwise skip write scope, read-write mode and confirmation.
    /// </summary>
    public bool TrustAnnotations { get; init; }

    /// <summary>Where the definition came from: <c>configuration</c> or <c>api</c>.</summary>
    public string Source { get; } = source;

    /// <summary>Whether running it means anything different from running <paramref name="other"/>.</summary>
    public bool SameAs(UpstreamDefinition other) =>
        Id == other.Id && TenantId == other.TenantId && Transport == other.Transport && Command == other.Command && Url == other.Url
        && TrustAnnotations == other.TrustAnnotations && Args.SequenceEqual(other.Args) && SameMap(Env, other.Env) && SameMap(Headers, other.Headers);

    /// <summary>Problems by field name; empty when the definition can be run.</summary>
    public Dictionary<string, string[]> Validate()
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (!Identifiers.IsValidTenantId(Id))
        {
            errors["id"] = ["Server ids match ^[a-z0-9][a-z0-9-]{0,62}$ (they prefix tool names as <server>__<tool>)."];
        }

        if (TenantId is not null && !Identifiers.IsValidTenantId(TenantId)) errors["tenantId"] = ["Tenant ids match ^[a-z0-9][a-z0-9-]{0,62}$."];
        switch (Transport)
        {
            case Stdio:
                if (string.IsNullOrWhiteSpace(Command)) errors["command"] = ["A stdio server needs the command that starts it."];
                if (Url is not null) errors["url"] = ["A stdio server has no url."];
                if (Headers.Count > 0) errors["headers"] = ["A stdio server has no headers; pass credentials in env."];
                break;
            case Http:
                if (!Uri.TryCreate(Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                {
                    errors["url"] = ["An http server needs an absolute http(s) url of its Streamable HTTP endpoint."];
                }

                if (Command is not null || Args.Length > 0) errors["command"] = ["An http server has no command or args."];
                if (Env.Count > 0) errors["env"] = ["An http server has no env; pass credentials in headers."];
                break;
            default:
                errors["transport"] = ["Transport is 'stdio' or 'http'."];
                break;
        }

        if (Env.Keys.Any(k => string.IsNullOrWhiteSpace(k) || k.Contains('=', StringComparison.Ordinal))) errors["env"] = ["Environment names are non-empty and contain no '='."];
        if (Headers.Keys.Any(k => string.IsNullOrWhiteSpace(k) || k.Any(c => c <= ' ' || c == ':'))) errors["headers"] = ["Header names are non-empty tokens."];
        return errors;
    }

    public override string ToString() => $"{Transport} upstream '{Key}'";

    private static bool SameMap(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
