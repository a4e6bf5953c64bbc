using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Redaction;
using ControlPlane.Audit.Writing;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Auditing;

/// <summary>
/// Turns guarded calls into audit records: arguments redacted and keyed-hashed once per call, never a
/// secret or the confirmation token, and each record awaited until it is durable.
/// </summary>
public sealed class CallAuditor(AuditWriter writer, Redactor redactor, ArgumentHasher hasher, ISiloIdentity silo, TimeProvider time)
{
    public const string CallKind = GuardRequestKinds.ToolCall;
    public const string IntentKind = "tools/call:intent";
    public const string ListKind = "tools/list";

    /// <summary>The audit code of a request for a tool this endpoint does not serve to the caller.</summary>
    public const string UnknownToolCode = "UNKNOWN_TOOL";

    /// <summary>The audit code of a request the guard could not route or parse (an unknown resource, prompt or server).</summary>
    public const string InvalidRequestCode = "INVALID_REQUEST";

    public bool IsHealthy => writer.IsHealthy;

    /// <summary>Starts the record of one request: the parts every record of it shares.</summary>
    public CallAudit Begin(GuardCall call)
    {
        var entry = new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Timestamp = time.GetUtcNow(),
            TenantId = call.Identity.TenantId,
            AgentId = call.Identity.AgentId,
            UserId = call.Identity.UserId,
            SessionId = call.Identity.SessionId,
            TokenId = call.Token.Id,
            Kind = call.Kind.WireName(),
            Server = call.Target.ServerId,
            Tool = call.Target.Name,
            Arguments = redactor.RedactToCanonicalJson(call.Arguments, call.Target.Key),
            ArgumentsHash = call.ArgumentsHash,
            Decision = "allowed",
            Outcome = "pending",
            Silo = silo.Name,
        };
        return new CallAudit(this, entry, time.GetTimestamp());
    }

    public Task RecordListAsync(string tenantId, string agentId, string? userId, string? sessionId, string tokenId, string? endpointServerId, int toolCount) =>
        writer.AppendAsync(new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Timestamp = time.GetUtcNow(),
            TenantId = tenantId,
            AgentId = agentId,
            UserId = userId,
            SessionId = sessionId,
            TokenId = tokenId,
            Kind = ListKind,
            Server = endpointServerId,
            Decision = "allowed",
            Outcome = "success",
            Silo = silo.Name,
            Detail = toolCount + " tools listed",
        });

    /// <summary>
    /// A read outside tools/call (resources/read, prompts/get, their lists): who read what on which server, and
    /// whether it was refused (<paramref name="code"/>) or answered. <paramref name="name"/> is the URI or prompt name.
    /// </summary>
    public Task RecordReadAsync(string kind, CallIdentity identity, string tokenId, string name, string? code, string outcome, double latencyMs, string? detail = null) =>
        writer.AppendAsync(new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Timestamp = time.GetUtcNow(),
            TenantId = identity.TenantId,
            AgentId = identity.AgentId,
            UserId = identity.UserId,
            SessionId = identity.SessionId,
            TokenId = tokenId,
            Kind = kind,
            Server = identity.ServerId,
            Tool = name,
            Decision = code is null ? "allowed" : "refused",
            Code = code,
            Outcome = outcome,
            LatencyMs = latencyMs,
            Silo = silo.Name,
            Detail = detail,
        });

    /// <summary>
    /// A request the guard could not even route (an unknown tool, resource, prompt or server): refused with
    /// <paramref name="code"/>, so probing shows up in the audit. Arguments are redacted and hashed like a call's.
    /// </summary>
    public Task RecordUnroutableAsync(string kind, Authentication.AgentIdentity agent, string? sessionId, string? serverId, string name, string code,
        IDictionary<string, JsonElement>? arguments = null) =>
        writer.AppendAsync(new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Timestamp = time.GetUtcNow(),
            TenantId = agent.TenantId,
            AgentId = agent.AgentId,
            UserId = agent.UserId,
            SessionId = sessionId,
            TokenId = agent.Token.Id,
            Kind = kind,
            Server = serverId,
            Tool = name,
            Arguments = redactor.RedactToCanonicalJson(arguments),
            ArgumentsHash = hasher.Hash(arguments),
            Decision = "refused",
            Code = code,
            Outcome = "refused",
            Silo = silo.Name,
        });

    /// <summary>Awaits a record; false if the audit store could not make it durable (any other failure propagates).</summary>
    public static async Task<bool> TryRecordAsync(Task record)
    {
        try
        {
            await record;
            return true;
        }
        catch (AuditUnavailableException)
        {
            return false;
        }
    }

    internal Task<AuditRecord> AppendAsync(AuditEntry entry) => writer.AppendAsync(entry);

    /// <summary>
    /// The record of something that already happened (an action ran) must not be dropped because the store blinked:
    /// the writer retries it in the background as soon as the store takes records again (its durable intent covers the gap).
    /// </summary>
    internal void AppendWhenPossible(AuditEntry entry) => writer.AppendWhenPossible(entry);

    internal double ElapsedMs(long started) => time.GetElapsedTime(started).TotalMilliseconds;

}

/// <summary>The audit of one call in progress.</summary>
public sealed class CallAudit
{
    private readonly CallAuditor _auditor;
    private readonly long _started;

    internal CallAudit(CallAuditor auditor, AuditEntry entry, long started)
    {
        _auditor = auditor;
        Entry = entry;
        _started = started;
    }

    public AuditEntry Entry { get; }

    public string CallId => Entry.Id;

    /// <summary>The call was refused; nothing ran.</summary>
    public Task RecordRefusalAsync(Refusal refusal) => _auditor.AppendAsync(Entry with
    {
        Decision = "refused",
        Code = refusal.Code,
        Outcome = "refused",
        LatencyMs = _auditor.ElapsedMs(_started),
    });

    /// <summary>An action is about to run: this must be durable first.</summary>
    public async Task RecordIntentAsync(string? confirmationId = null)
    {
        await _auditor.AppendAsync(Entry with
        {
            Id = Entry.Id + ":intent",
            Kind = CallAuditor.IntentKind,
            ConfirmationId = confirmationId,
        });
        IntentRecorded = true;
    }

    /// <summary>True once this action's intent record is durable: from then on, its ending must be recorded too.</summary>
    public bool IntentRecorded { get; private set; }

    public Task RecordResultAsync(Result result, string? confirmationId = null) => _auditor.AppendAsync(ResultEntry(result, confirmationId));

    /// <summary>
    /// The result of an action that ran. False if the store refused it now; the record is then written in the
    /// background once the store is back, so the audit never keeps only the intent of an action that completed.
    /// </summary>
    public async Task<bool> RecordActionResultAsync(Result result, string? confirmationId)
    {
        var entry = ResultEntry(result, confirmationId);
        try
        {
            await _auditor.AppendAsync(entry);
            return true;
        }
        catch (AuditUnavailableException)
        {
            _auditor.AppendWhenPossible(entry);
            return false;
        }
    }

    private AuditEntry ResultEntry(Result result, string? confirmationId)
    {
        // The result is serialised into a per-thread buffer only to be hashed and measured: no array per call.
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, ResultJson.WriterOptions);
        writer.Reset(buffer);
        ResultJson.Write(writer, result);
        writer.Flush();
        var isError = result is CallToolResult { IsError: true };
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(buffer.WrittenSpan, hash);
        var size = buffer.WrittenCount;
        if (buffer.Capacity > MaxRetainedBuffer) t_buffer = null;

        return Entry with
        {
            Outcome = isError ? "error" : "success",
            ErrorType = isError ? "tool_error" : null,
            ResultHash = Convert.ToHexStringLower(hash),
            ResultSize = size,
            LatencyMs = _auditor.ElapsedMs(_started),
            ConfirmationId = confirmationId,
        };
    }

    private const int MaxRetainedBuffer = 1 << 20;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>The call ended without a result: killed in flight, cancelled, or the tool threw.</summary>
    public Task RecordFailureAsync(string errorType, string? code = null) => _auditor.AppendAsync(FailureEntry(errorType, code));

    /// <summary>
    /// How an action that started then ended without a result. Like its result, it must not be lost because the store
    /// blinked: its intent is durable, and an intent without an ending would read as an action still running.
    /// </summary>
    public async Task RecordActionFailureAsync(string errorType, string? code = null)
    {
        var entry = FailureEntry(errorType, code);
        try
        {
            await _auditor.AppendAsync(entry);
        }
        catch (AuditUnavailableException)
        {
            _auditor.AppendWhenPossible(entry);
        }
    }

    private AuditEntry FailureEntry(string errorType, string? code) => Entry with
    {
        Outcome = "error",
        ErrorType = errorType,
        Code = code,
        LatencyMs = _auditor.ElapsedMs(_started),
    };
}
