using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Operators;

namespace ControlPlane.Host.Operations;

/// <summary>
/// One operator action as the audit records it: kind <c>operator/&lt;Action&gt;</c>, in the chain of
/// <paramref name="TenantId"/> (or <see cref="AuditTenants.Cluster"/> when it reaches every tenant). The target names
/// what was acted on; it must never hold a secret (a token's id, never its bearer; credential names, never values).
/// </summary>
internal sealed record OperatorAction(string Action, string? TenantId, IReadOnlyList<KeyValuePair<string, string?>> Target, string? Reason)
{
    /// <summary>Optional record fields, so the audit API's own filters (server, tool, agent) find operator events too.</summary>
    public string? Server { get; init; }

    public string? Tool { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? TokenId { get; init; }

    public static IReadOnlyList<KeyValuePair<string, string?>> Targets(params (string Name, string? Value)[] parts) =>
        [.. parts.Where(p => p.Value is not null).Select(p => KeyValuePair.Create(p.Name, p.Value))];
}

/// <summary>
/// Puts operator actions (kill switches, modes, classifications, tokens, tenants, servers) into the same
/// tamper-evident trail as the calls they govern. The record's <c>userId</c> is the acting operator, its
/// <c>arguments</c> the JSON <c>{"operator", "action", "target": {...}, "reason"}</c>, and its <c>detail</c> one
/// readable sentence.
///
/// Failure policy, because at 3 a.m. the audit store may be the thing that is down:
/// <list type="bullet">
/// <item>Protective actions (kill switch set, token revoke, mode to read-only, classification to action, server remove)
/// are applied first and audited after, through the writer's retry path: an audit outage must never stop an operator
/// from stopping an agent.</item>
/// <item>Permissive actions (kill switch clear, mode to read-write, classification to read, token mint, tenant
/// create, server register, rate limits, schemas, projections, retention) are made durable in the audit first and refused
/// with AUDIT_UNAVAILABLE when they cannot be: nobody may widen what agents can do without leaving a trace, the same
/// rule the guard applies to an action's intent record.</item>
/// </list>
/// </summary>
internal sealed class OperatorAuditor(AuditWriter writer, ISiloIdentity silo, TimeProvider time)
{
    public const string KindPrefix = "operator/";

    /// <summary>How long a protective action's response waits for its record before leaving it to the writer's retries.</summary>
    private static readonly TimeSpan ProtectiveWait = TimeSpan.FromSeconds(3);

    /// <summary>Audits first, then applies; throws <see cref="AuditUnavailableException"/> and changes nothing if the record is not durable.</summary>
    public async Task<T> PermissiveAsync<T>(OperatorAccount by, OperatorAction action, Func<Task<T>> apply)
    {
        var entry = Entry(by, action);
        await writer.AppendAsync(entry);
        try
        {
            return await apply();
        }
        catch (Exception ex)
        {
            // The record says the action was taken; say that it then failed, so the trail does not overstate it.
            writer.AppendWhenPossible(entry with
            {
                Id = entry.Id + ":failed",
                Timestamp = time.GetUtcNow(),
                Outcome = "error",
                ErrorType = ex.GetType().Name,
                Detail = entry.Detail + " | failed: " + ex.GetType().Name,
            });
            throw;
        }
    }

    /// <summary>Applies first, then audits; an audit outage delays the record (retried in the background), never the action.</summary>
    public async Task<T> ProtectiveAsync<T>(OperatorAccount by, Func<Task<T>> apply, Func<T, OperatorAction?> describe)
    {
        var result = await SiloFailover.RideOutAsync(apply);
        if (describe(result) is { } action) await RecordAfterAsync(Entry(by, action));
        return result;
    }

    private async Task RecordAfterAsync(AuditEntry entry)
    {
        var pending = writer.AppendAsync(entry);
        try
        {
            await pending.WaitAsync(ProtectiveWait, time);
        }
        catch (AuditUnavailableException)
        {
            writer.AppendWhenPossible(entry);
        }
        catch (TimeoutException)
        {
            // The store is slow, not failing (yet): answer the operator now; retry only if this attempt fails.
            _ = pending.ContinueWith(
                static (task, state) =>
                {
                    var (w, e) = ((AuditWriter, AuditEntry))state!;
                    if (task.IsFaulted) w.AppendWhenPossible(e);
                },
                (writer, entry),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private AuditEntry Entry(OperatorAccount by, OperatorAction action) => new()
    {
        Id = Guid.CreateVersion7().ToString("N"),
        Timestamp = time.GetUtcNow(),
        TenantId = action.TenantId ?? AuditTenants.Cluster,
        UserId = by.Id,
        AgentId = action.AgentId,
        SessionId = action.SessionId,
        TokenId = action.TokenId,
        Kind = KindPrefix + action.Action,
        Server = action.Server,
        Tool = action.Tool,
        Arguments = Arguments(by, action),
        Decision = "allowed",
        Outcome = "success",
        Silo = silo.Name,
        Detail = Sentence(by, action),
    };

    private static string Arguments(OperatorAccount by, OperatorAction action)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("action", action.Action);
            json.WriteString("operator", by.Id);
            if (action.Reason is not null) json.WriteString("reason", action.Reason);
            json.WriteStartObject("target");
            foreach (var (name, value) in action.Target) json.WriteString(name, value);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Sentence(OperatorAccount by, OperatorAction action)
    {
        var text = new StringBuilder().Append(by.Id).Append(' ').Append(action.Action);
        if (action.Target.Count > 0) text.Append(' ').AppendJoin(", ", action.Target.Select(t => t.Key + "=" + t.Value));
        if (action.Reason is not null) text.Append(": ").Append(action.Reason);
        return text.ToString();
    }

    /// <summary>True when <paramref name="ex"/> (or what it wraps, as it crossed a grain call) is an audit outage.</summary>
    public static bool IsAuditFailure(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            // Typed both ways: this silo's own writer, or a grain's failure that crossed silos as StoreUnavailableException.
            if (ex is AuditUnavailableException or Availability.StoreUnavailableException { Code: Refusals.RefusalCodes.AuditUnavailable }) return true;
        }

        return false;
    }
}

/// <summary>How upstream registrations appear in the audit: never a credential value, and no argument list or URL query that could hold one.</summary>
internal static class UpstreamAudit
{
    public static OperatorAction Registered(ControlPlane.Upstreams.UpstreamServerRegistration r) =>
        Describe("server.register", r, ("transport", r.Transport), ("command", r.Command is null ? null : Path.GetFileName(r.Command)), ("url", SafeUrl(r.Url)),
            ("envNames", r.EnvNames.Length == 0 ? null : string.Join(' ', r.EnvNames)), ("headerNames", r.HeaderNames.Length == 0 ? null : string.Join(' ', r.HeaderNames)));

    public static OperatorAction Removed(ControlPlane.Upstreams.UpstreamServerRegistration r) => Describe("server.remove", r);

    private static OperatorAction Describe(string action, ControlPlane.Upstreams.UpstreamServerRegistration r, params (string, string?)[] more) =>
        new(action, r.TenantId, OperatorAction.Targets([("serverId", r.Id), ("tenantId", r.TenantId), .. more]), Reason: null) { Server = r.Id };

    /// <summary>Scheme, host, port and path: user info and query strings are where credentials hide in URLs.</summary>
    private static string? SafeUrl(string? url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped) : null;
}

/// <summary>An operator event read back from its record, for the console: who did what to which target, and why.</summary>
internal sealed record OperatorEventView(string Operator, string Action, string Target, string? Reason)
{
    public static OperatorEventView? From(AuditEntry entry)
    {
        if (!entry.Kind.StartsWith(OperatorAuditor.KindPrefix, StringComparison.Ordinal) || entry.Arguments is null) return null;
        try
        {
            using var json = JsonDocument.Parse(entry.Arguments);
            var root = json.RootElement;
            var target = root.TryGetProperty("target", out var t) && t.ValueKind == JsonValueKind.Object
                ? string.Join(", ", t.EnumerateObject().Select(p => p.Name + "=" + p.Value.GetString()))
                : "";
            return new OperatorEventView(
                entry.UserId ?? "?",
                entry.Kind[OperatorAuditor.KindPrefix.Length..],
                target,
                root.TryGetProperty("reason", out var r) ? r.GetString() : null);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
