using System.Text.Json;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Schemas;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.Operators;
using ControlPlane.Policy;

namespace ControlPlane.Host.Operations;

/// <summary>Server modes, classification overrides and schema tightenings, set by operators.</summary>
internal sealed class PolicyService(IGrainFactory grains, ToolCatalog catalog, GuardStateCache guardState, TenantService tenants, OperatorAuditor auditor, TimeProvider time)
{
    private IGuardStateGrain Owner => grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

    /// <summary>
    /// Read-write needs an admin: it lets an agent change things. Going back to read-only is a safety
    /// move any operator may make at 3 a.m.
    /// </summary>
    public async Task<ServerModeSetting> SetModeAsync(OperatorAccount by, string tenantId, string serverId, string? mode, string? reason)
    {
        var readWrite = mode switch
        {
            "read-write" => true,
            "read-only" => false,
            _ => throw InvalidRequestException.For("mode", "Mode is 'read-only' or 'read-write'."),
        };
        by.RequireRole(readWrite ? OperatorRoles.Admin : OperatorRoles.Operator);
        RequireReason(reason);
        await tenants.GetVisibleAsync(by, tenantId);
        RequireServer(serverId);
        if (readWrite)
        {
            var modes = (await Owner.GetSnapshotAsync()).ServerModes ?? [];
            if (!modes.Any(m => m.TenantId == tenantId && m.ServerId == serverId))
            {
                RequireRoom(modes.Count(m => m.TenantId == tenantId), GuardStateLimits.MaxServerModesPerTenant, tenantId, "servers in read-write mode",
                    "set servers the tenant no longer writes to back to read-only");
            }
        }

        var action = new OperatorAction("mode.set", tenantId, OperatorAction.Targets(("tenantId", tenantId), ("serverId", serverId), ("mode", mode)), reason!.Trim())
        {
            Server = serverId,
        };
        // Read-write widens what agents may do: on record first. Read-only is protective: applied first.
        return readWrite
            ? await auditor.PermissiveAsync(by, action, () => Owner.SetServerModeAsync(tenantId, serverId, true, reason!.Trim(), by.Id))
            : await auditor.ProtectiveAsync(by, () => Owner.SetServerModeAsync(tenantId, serverId, false, reason!.Trim(), by.Id), _ => action);
    }

    public async Task<ToolClassificationOverride> SetClassificationAsync(OperatorAccount by, string serverId, string toolName, string? classification, string? tenantId, string? reason)
    {
        by.RequireRole(OperatorRoles.Admin);
        var isAction = classification switch
        {
            "action" => true,
            "read" => false,
            _ => throw InvalidRequestException.For("classification", "Classification is 'read' or 'action'."),
        };
        RequireReason(reason);
        await AuthorizeToolScopeAsync(by, tenantId, "A classification for every tenant");
        RequireTool(serverId, toolName);
        var overrides = (await Owner.GetSnapshotAsync()).ClassificationOverrides ?? [];
        if (!overrides.Any(o => o.ServerId == serverId && o.ToolName == toolName && o.TenantId == tenantId))
        {
            RequireRoom(overrides.Count(o => o.TenantId == tenantId), GuardStateLimits.MaxClassificationOverridesPerTenant, tenantId, "classification overrides",
                "remove overrides no longer needed");
        }

        var action = new OperatorAction("tool-classification.set", tenantId, OperatorAction.Targets(
            ("serverId", serverId), ("toolName", toolName), ("tenantId", tenantId), ("classification", classification)), reason!.Trim())
        {
            Server = serverId,
            Tool = toolName,
        };
        // "read" lets a tool run without confirmation or write scope: on record first. "action" is protective.
        return isAction
            ? await auditor.ProtectiveAsync(by, () => Owner.SetClassificationAsync(serverId, toolName, tenantId, true, reason!.Trim(), by.Id), _ => action)
            : await auditor.PermissiveAsync(by, action, () => Owner.SetClassificationAsync(serverId, toolName, tenantId, false, reason!.Trim(), by.Id));
    }

    public async Task<SchemaOverride?> SetSchemaAsync(OperatorAccount by, string serverId, string toolName, JsonElement? schema, string? tenantId, string? reason)
    {
        by.RequireRole(OperatorRoles.Admin);
        RequireReason(reason);
        string? json = null;
        if (schema is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } given)
        {
            json = given.GetRawText();
            if (json.Length > GuardStateLimits.MaxSchemaLength)
            {
                throw InvalidRequestException.For("schema", $"A schema override is at most {GuardStateLimits.MaxSchemaLength} characters of JSON (this one has {json.Length}).");
            }

            if (ArgumentSchema.Check(json) is { } problem) throw InvalidRequestException.For("schema", problem);
        }

        await AuthorizeToolScopeAsync(by, tenantId, "A schema for every tenant");
        RequireTool(serverId, toolName);
        var schemas = (await Owner.GetSnapshotAsync()).SchemaOverrides ?? [];
        if (json is not null && !schemas.Any(o => o.ServerId == serverId && o.ToolName == toolName && o.TenantId == tenantId))
        {
            RequireRoom(schemas.Count(o => o.TenantId == tenantId), GuardStateLimits.MaxSchemaOverridesPerTenant, tenantId, "schema overrides",
                "remove overrides no longer needed (\"schema\": null)");
        }
        // A schema can loosen as well as tighten, so it is treated as permissive: on record first.
        return await auditor.PermissiveAsync(by, new OperatorAction("tool-schema.set", tenantId, OperatorAction.Targets(
                ("serverId", serverId), ("toolName", toolName), ("tenantId", tenantId), ("schema", json is null ? "removed" : "set")), reason!.Trim())
            {
                Server = serverId,
                Tool = toolName,
            },
            () => Owner.SetSchemaOverrideAsync(serverId, toolName, tenantId, json, reason!.Trim(), by.Id));
    }

    public async Task<ControlPlane.RateLimits.RateLimitSetting> SetRateLimitAsync(OperatorAccount by, string tenantId, string? scope, string? agentId, string? userId, string? serverId, string? toolName, double? capacity, double? refillPerSecond)
    {
        by.RequireRole(OperatorRoles.Admin);
        await tenants.GetVisibleAsync(by, tenantId);
        var check = new RequestValidator()
            .Check(scope is "tenant" or "agent" or "user" or "tool", "scope", "Scope is tenant, agent, user or tool.")
            .Check(capacity is >= 0 and <= 1_000_000, "capacity", "Capacity is 0 (removes the limit) to 1,000,000.")
            .Check(refillPerSecond is >= 0 and <= 1_000_000, "refillPerSecond", "Refill is 0 to 1,000,000 per second.");
        string? subject = scope switch
        {
            "agent" => agentId,
            "user" => userId,
            "tool" when serverId is not null && toolName is not null => serverId + "/" + toolName,
            "tool" when serverId is not null || toolName is not null => "!",
            _ => null,
        };
        check.Check(subject != "!", "toolName", "A tool limit names both serverId and toolName, or neither (each tool).");
        check.Check(subject is null or "!" || Identifiers.IsValidReference(subject), "subject", "Ids use letters, digits, '-', '_', '.', ':' or '/'.");
        check.ThrowIfInvalid();

        var setting = new ControlPlane.RateLimits.RateLimitSetting(tenantId, scope!, subject, capacity!.Value, refillPerSecond!.Value, by.Id, time.GetUtcNow());
        var limits = (await Owner.GetSnapshotAsync()).RateLimits ?? [];
        if (setting.Capacity > 0 && !limits.Any(r => r.Key == setting.Key))
        {
            RequireRoom(limits.Count(r => r.TenantId == tenantId), GuardStateLimits.MaxRateLimitsPerTenant, tenantId, "rate limits",
                "remove limits no longer needed (capacity 0), or set one limit without an id that applies to each agent, user or tool");
        }

        // A new limit may be higher than the old one, and capacity 0 removes it: treated as permissive, on record first.
        var action = new OperatorAction("rate-limit.set", tenantId, OperatorAction.Targets(
            ("tenantId", tenantId), ("scope", scope), ("subject", subject),
            ("capacity", capacity.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("refillPerSecond", refillPerSecond.Value.ToString(System.Globalization.CultureInfo.InvariantCulture))), Reason: null);
        return await auditor.PermissiveAsync(by, action, async () =>
        {
            await Owner.SetRateLimitAsync(setting);
            return setting;
        });
    }

    public async Task<IReadOnlyList<ControlPlane.RateLimits.RateLimitSetting>> ListRateLimitsAsync(OperatorAccount by, string tenantId)
    {
        by.RequireRole(OperatorRoles.Viewer);
        await tenants.GetVisibleAsync(by, tenantId);
        return [.. guardState.Policy.RateLimits(tenantId)];
    }

    public async Task<ProjectionSetting?> SetProjectionAsync(OperatorAccount by, string serverId, string toolName, string[]? fields, int? maxItems, int? maxBytes, bool? redactPii, bool remove, string? reason)
    {
        by.RequireRole(OperatorRoles.Admin);
        by.RequireAllTenants("A tool's result projection");
        RequireReason(reason);
        RequireTool(serverId, toolName);
        var check = new RequestValidator()
            .Check(maxItems is null or (>= 1 and <= 100_000), "maxItems", "Between 1 and 100000.")
            .Check(maxBytes is null or (>= 64 and <= 64 * 1024 * 1024), "maxBytes", "Between 64 bytes and 64 MiB.");
        check.Check(fields is null || fields.Length <= GuardStateLimits.MaxProjectionFields, "fields",
            $"A projection keeps at most {GuardStateLimits.MaxProjectionFields} fields.");
        foreach (var field in (fields ?? []).Take(GuardStateLimits.MaxProjectionFields + 1))
        {
            if (field is null || field.Length > GuardStateLimits.MaxPointerLength)
            {
                check.Add("fields", $"Each field is a JSON pointer of at most {GuardStateLimits.MaxPointerLength} characters.");
                continue;
            }

            check.Check(field.StartsWith('/') && field.Length > 1, "fields", $"'{field}' is not a JSON pointer such as /id or /orders/*/id.");
        }

        check.ThrowIfInvalid();
        var projections = (await Owner.GetSnapshotAsync()).Projections ?? [];
        if (!remove && !projections.Any(p => p.ServerId == serverId && p.ToolName == toolName))
        {
            RequireRoom(projections.Length, GuardStateLimits.MaxProjections, null, "result projections", "remove projections no longer needed");
        }

        var projection = remove ? null : new ProjectionSetting(serverId, toolName, fields ?? [], maxItems, maxBytes, redactPii ?? true, reason!.Trim(), by.Id, time.GetUtcNow());
        // Removing or widening a projection shows agents more data: treated as permissive, on record first.
        var action = new OperatorAction("projection.set", null, OperatorAction.Targets(
            ("serverId", serverId), ("toolName", toolName), ("projection", remove ? "removed" : "set")), reason!.Trim())
        {
            Server = serverId,
            Tool = toolName,
        };
        return await auditor.PermissiveAsync(by, action, async () =>
        {
            await Owner.SetProjectionAsync(serverId, toolName, projection, reason!.Trim(), by.Id);
            return projection;
        });
    }

    /// <summary>Every server with its mode for the tenant and each tool's effective classification.</summary>
    public async Task<IReadOnlyList<ServerView>> ListServersAsync(OperatorAccount by, string tenantId)
    {
        by.RequireRole(OperatorRoles.Viewer);
        await tenants.GetVisibleAsync(by, tenantId);
        var policy = guardState.Policy;
        return
        [
            // An upstream registered for another tenant does not exist for this one; the tenant's own registration replaces the global one.
            .. catalog.ServerIds.Where(serverId => catalog.Serves(serverId, tenantId)).Select(serverId => new ServerView(
                serverId,
                policy.IsReadWrite(tenantId, serverId) ? "read-write" : "read-only",
                [.. catalog.ForEndpoint(serverId, tenantId).OrderBy(t => t.ToolName, StringComparer.Ordinal).Select(t => ToolView.Of(t, policy.IsAction(t, tenantId)))])),
        ];
    }

    private async Task AuthorizeToolScopeAsync(OperatorAccount by, string? tenantId, string what)
    {
        if (tenantId is null) by.RequireAllTenants(what);
        else await tenants.GetVisibleAsync(by, tenantId);
    }

    private void RequireServer(string serverId)
    {
        if (!catalog.HasServer(serverId)) throw new NotFoundException($"No server '{serverId}'.");
    }

    private void RequireTool(string serverId, string toolName)
    {
        RequireServer(serverId);
        if (!catalog.ForEndpoint(serverId).Any(t => t.ToolName == toolName)) throw new NotFoundException($"Server '{serverId}' has no tool '{toolName}'.");
    }

    private static void RequireReason(string? reason)
    {
        new RequestValidator()
            .Check(!string.IsNullOrWhiteSpace(reason), "reason", "A reason is required: say why, for the audit and the next person on call.")
            .Check(reason is null || reason.Trim().Length <= GuardStateLimits.MaxReasonLength, "reason", $"Keep the reason to {GuardStateLimits.MaxReasonLength} characters.")
            .ThrowIfInvalid();
    }

    /// <summary>
    /// Refuses, before the audit records anything, an entry a tenant (or, for null, every tenant) has no room for;
    /// the owner grain checks again, authoritatively.
    /// </summary>
    private static void RequireRoom(int held, int max, string? tenantId, string noun, string remedy)
    {
        if (held < max) return;
        var whose = tenantId is null ? "every tenant" : $"tenant '{tenantId}'";
        throw new ConflictException($"There are already {held} {noun} for {whose}, the most the guard state keeps ({max}); nothing was changed. To add one, {remedy}.");
    }
}

internal sealed record ServerView(string ServerId, string Mode, IReadOnlyList<ToolView> Tools);

/// <summary>
/// One tool as operators see it: <c>classification</c> is what the guard enforces for the tenant (operator overrides applied);
/// <c>declaredClassification</c> the tool's own before overrides, and <c>classificationSource</c> where that came from
/// (<c>code</c> for in-process tools, <c>annotations</c> for an upstream whose annotations an admin trusts, <c>untrusted</c>
/// for an upstream's tool: an action until classified read). <c>annotationHint</c> is what the tool's annotations claim
/// (<c>read</c> or <c>action</c>; absent without annotations), a hint for the operator and nothing more unless trusted.
/// </summary>
internal sealed record ToolView(string Name, string PublicName, string Classification, string DeclaredClassification, string ClassificationSource, string? AnnotationHint)
{
    public static ToolView Of(ToolDescriptor tool, bool isAction) => new(
        tool.ToolName,
        tool.PublicName,
        isAction ? "action" : "read",
        tool.IsAction ? "action" : "read",
        tool.ClassificationSource.ToString().ToLowerInvariant(),
        tool.AnnotationHint switch { ToolClassification.Read => "read", ToolClassification.Action => "action", _ => null });
}
