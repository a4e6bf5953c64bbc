using ControlPlane.Guard.Catalog;
using ControlPlane.Operators;
using ControlPlane.Upstreams;
using ControlPlane.Upstreams.Egress;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Operations;

/// <summary>
/// Registers and removes upstream MCP servers. Only admins register: an upstream runs commands or reaches
/// URLs with credentials. A tenant-limited admin registers HTTP servers for its own tenants only; a stdio server needs
/// an admin who sees every tenant and a command on the deployment's allowlist; an HTTP URL with a literal address must
/// pass the egress policy (names are judged where they resolve, at each connect). Credentials are
/// encrypted here, before the registration leaves this silo, and no answer ever carries them back.
/// One server id may carry a global registration and one per tenant; each is registered and removed on its own.
/// </summary>
internal sealed class UpstreamServerService(
    IGrainFactory grains,
    UpstreamSecretProtector secrets,
    UpstreamGateway gateway,
    ToolCatalog catalog,
    TenantService tenants,
    TimeProvider time,
    OperatorAuditor auditor,
    IOptions<UpstreamOptions> options,
    EgressPolicy egress)
{
    private const string TrustingAnnotations = "Trusting an upstream's own tool annotations (they decide which tools skip write scope and confirmation)";

    private IUpstreamRegistryGrain Registry => grains.GetGrain<IUpstreamRegistryGrain>(IUpstreamRegistryGrain.Singleton);

    public async Task<(UpstreamView View, bool Created)> RegisterAsync(OperatorAccount by, string? id, string? tenantId, string? transport,
        string? command, string[]? args, string? url, Dictionary<string, string>? env, Dictionary<string, string>? headers, bool? trustAnnotations,
        CancellationToken cancellationToken)
    {
        by.RequireRole(OperatorRoles.Admin);
        var definition = new UpstreamDefinition(id ?? "", tenantId, transport ?? "", command, args ?? [], url,
            env ?? [], new Dictionary<string, string>(headers ?? [], StringComparer.OrdinalIgnoreCase), "api")
        {
            TrustAnnotations = trustAnnotations ?? false,
        };
        var errors = definition.Validate();
        if (errors.Count > 0) throw new InvalidRequestException(errors);

        if (tenantId is null) by.RequireAllTenants("A server for every tenant");
        else await tenants.GetVisibleAsync(by, tenantId);

        // A server that classifies its own tools decides what skips write scope and confirmation in every tenant that uses it.
        if (definition.TrustAnnotations) by.RequireAllTenants(TrustingAnnotations);

        // A stdio upstream is a process on every silo with the silo's rights: whichever tenant it serves, it reaches them all.
        if (definition.Transport == UpstreamDefinition.Stdio)
        {
            by.RequireAllTenants("A stdio upstream (a process running with the silo's rights)");
            if (options.Value.Stdio.Refuse(definition.Command) is { } refused) throw InvalidRequestException.For("command", $"Not registered: {refused}.");
        }
        else if (egress.RefuseLiteral(new Uri(definition.Url!)) is { } blocked)
        {
            // A name is judged at each connect, where it resolves then; a literal address can be refused now.
            throw InvalidRequestException.For("url", $"Not registered: {blocked}.");
        }

        if (gateway.IsDeclaredInConfiguration(definition.Id)) throw new ConflictException($"Server '{definition.Id}' is declared in configuration; change it there.");
        var registered = (await Registry.GetAsync()).Servers.Any(s => s.Id == definition.Id);
        if (!registered && catalog.HasServer(definition.Id)) throw new ConflictException($"Server id '{definition.Id}' is taken by a built-in tool server.");

        var registration = new UpstreamServerRegistration(definition.Id, definition.TenantId, definition.Transport, definition.Command, definition.Args,
            definition.Url, [.. definition.Env.Keys.Order(StringComparer.Ordinal)], [.. definition.Headers.Keys.Order(StringComparer.OrdinalIgnoreCase)],
            secrets.Protect(definition.Env, definition.Headers), by.Id, time.GetUtcNow(), definition.TrustAnnotations);
        var created = await auditor.PermissiveAsync(by, UpstreamAudit.Registered(registration), () => Registry.RegisterAsync(registration));
        await gateway.RefreshAsync(cancellationToken);
        return (View(registration), created);
    }

    /// <summary>
    /// Turns trust in one registration's own tool annotations on or off. Trusting lets the upstream mark tools read (no write
    /// scope, read-only mode or confirmation), so it needs an all-tenant admin, a reason, and is on record before it applies;
    /// withdrawing trust is protective and applies first. Its tools are classified again when the connection restarts.
    /// </summary>
    public async Task<UpstreamView> SetTrustAnnotationsAsync(OperatorAccount by, string id, string? tenantId, bool? trust, string? reason, CancellationToken cancellationToken)
    {
        by.RequireRole(OperatorRoles.Admin);
        by.RequireAllTenants(TrustingAnnotations);
        new RequestValidator()
            .Check(trust is not null, "trust", "Say true (the server's readOnlyHint classifies its tools) or false (every tool is an action until classified read).")
            .Check(!string.IsNullOrWhiteSpace(reason), "reason", "A reason is required: say why, for the audit and the next person on call.")
            .Check(reason is null || reason.Length <= 500, "reason", "Keep the reason under 500 characters.")
            .ThrowIfInvalid();
        if (gateway.IsDeclaredInConfiguration(id))
        {
            throw new ConflictException($"Server '{id}' is declared in configuration; set ControlPlane:Upstreams:Servers:{id}:TrustAnnotations there.");
        }

        var existing = await FindAsync(by, id, tenantId);
        var changed = existing with { TrustAnnotations = trust!.Value };
        var action = new OperatorAction("server.trust-annotations.set", existing.TenantId, OperatorAction.Targets(
            ("serverId", id), ("tenantId", existing.TenantId), ("trustAnnotations", trust.Value ? "true" : "false")), reason!.Trim())
        {
            Server = id,
        };
        if (trust.Value) await auditor.PermissiveAsync(by, action, () => Registry.RegisterAsync(changed));
        else await auditor.ProtectiveAsync(by, () => Registry.RegisterAsync(changed), _ => action);
        await gateway.RefreshAsync(cancellationToken);
        return View(changed);
    }

    /// <summary>Every upstream this operator may see, with its status on this silo.</summary>
    public async Task<IReadOnlyList<UpstreamView>> ListAsync(OperatorAccount by)
    {
        by.RequireRole(OperatorRoles.Viewer);
        var running = gateway.List().ToDictionary(v => UpstreamServerRegistration.KeyOf(v.Id, v.TenantId), StringComparer.Ordinal);
        var registered = (await Registry.GetAsync()).Servers.Select(r => running.GetValueOrDefault(r.Key) ?? View(r));
        return
        [
            .. running.Values.Where(v => v.Source == "configuration").Concat(registered)
                .Where(v => v.TenantId is null || by.CanSeeTenant(v.TenantId))
                .OrderBy(v => v.Id, StringComparer.Ordinal).ThenBy(v => v.TenantId, StringComparer.Ordinal),
        ];
    }

    /// <summary>
    /// Removes one registration of an id: the tenant's own when <paramref name="tenantId"/> is given; otherwise the
    /// global one, or the id's only registration when it has no global one (as before ids carried one per tenant).
    /// </summary>
    public async Task<UpstreamView> RemoveAsync(OperatorAccount by, string id, string? tenantId, CancellationToken cancellationToken)
    {
        by.RequireRole(OperatorRoles.Admin);
        if (gateway.IsDeclaredInConfiguration(id)) throw new ConflictException($"Server '{id}' is declared in configuration; remove it there.");
        var existing = await FindAsync(by, id, tenantId);
        await auditor.ProtectiveAsync(by, () => Registry.RemoveAsync(id, existing.TenantId), _ => UpstreamAudit.Removed(existing));
        await gateway.RefreshAsync(cancellationToken);
        return View(existing);
    }

    /// <summary>
    /// One registration of an id: the tenant's own when <paramref name="tenantId"/> is given; otherwise the global one, or
    /// the id's only registration when it has no global one. The operator must be allowed to act on what it serves.
    /// </summary>
    private async Task<UpstreamServerRegistration> FindAsync(OperatorAccount by, string id, string? tenantId)
    {
        var ofId = (await Registry.GetAsync()).Servers.Where(s => s.Id == id).ToList();
        var existing = tenantId is not null
            ? ofId.FirstOrDefault(s => s.TenantId == tenantId)
            : ofId.FirstOrDefault(s => s.TenantId is null) ?? (ofId.Count > 1
                ? throw new ConflictException($"Server '{id}' has a registration per tenant ({string.Join(", ", ofId.Select(s => s.TenantId).OfType<string>().Where(by.CanSeeTenant))}); name one with ?tenantId=.")
                : ofId.SingleOrDefault());
        if (existing is null)
        {
            throw new NotFoundException(tenantId is null ? $"No upstream server '{id}'." : $"No upstream server '{id}' for tenant '{tenantId}'.");
        }

        if (existing.TenantId is null) by.RequireAllTenants("A server for every tenant");
        else by.RequireTenant(existing.TenantId);
        return existing;
    }

    private UpstreamView View(UpstreamServerRegistration r) =>
        gateway.List().FirstOrDefault(v => v.Id == r.Id && v.TenantId == r.TenantId)
        ?? new UpstreamView(r.Id, r.TenantId, r.Transport, r.Command, r.Args, r.Url, r.EnvNames, r.HeaderNames, "api", "not-running", 0, 0, r.TrustAnnotations);
}
