namespace ControlPlane.Policy;

/// <summary>A server switched to read-write for one tenant: who did it, when and why. Absent means read-only.</summary>
[GenerateSerializer, Immutable, Alias("cp.ServerModeSetting")]
public sealed record ServerModeSetting(
    [property: Id(0)] string TenantId,
    [property: Id(1)] string ServerId,
    [property: Id(2)] bool ReadWrite,
    [property: Id(3)] string Reason,
    [property: Id(4)] string SetBy,
    [property: Id(5)] DateTimeOffset SetAt)
{
    public string Key => TenantId + "|" + ServerId;
}

/// <summary>An operator's override of a tool's read/action classification, for every tenant or one.</summary>
[GenerateSerializer, Immutable, Alias("cp.ToolClassificationOverride")]
public sealed record ToolClassificationOverride(
    [property: Id(0)] string ServerId,
    [property: Id(1)] string ToolName,
    [property: Id(2)] string? TenantId,
    [property: Id(3)] bool IsAction,
    [property: Id(4)] string Reason,
    [property: Id(5)] string SetBy,
    [property: Id(6)] DateTimeOffset SetAt)
{
    public string Key => TenantId is null ? $"{ServerId}|{ToolName}" : $"{ServerId}|{ToolName}|{TenantId}";
}

/// <summary>
/// An operator's tightening of a tool's input schema. It is applied in addition to the tool's own schema
/// (both must accept the arguments), so by construction it can only tighten, never loosen.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.SchemaOverride")]
public sealed record SchemaOverride(
    [property: Id(0)] string ServerId,
    [property: Id(1)] string ToolName,
    [property: Id(2)] string? TenantId,
    [property: Id(3)] string SchemaJson,
    [property: Id(4)] string Reason,
    [property: Id(5)] string SetBy,
    [property: Id(6)] DateTimeOffset SetAt)
{
    public string Key => TenantId is null ? $"{ServerId}|{ToolName}" : $"{ServerId}|{ToolName}|{TenantId}";
}

/// <summary>A change to tool policy, kept in the guard state's history: who changed what, when and why.</summary>
[GenerateSerializer, Immutable, Alias("cp.PolicyEvent")]
public sealed record PolicyEvent(
    [property: Id(0)] string Kind,
    [property: Id(1)] string Subject,
    [property: Id(2)] string Value,
    [property: Id(3)] string Reason,
    [property: Id(4)] string By,
    [property: Id(5)] DateTimeOffset At);

/// <summary>
/// What a read tool's result may carry back to the agent: only these fields (JSON pointers into the
/// structured result; empty means all), at most so many array items, at most so many bytes, and PII redacted.
/// </summary>
[GenerateSerializer, Immutable, Alias("cp.ProjectionSetting")]
public sealed record ProjectionSetting(
    [property: Id(0)] string ServerId,
    [property: Id(1)] string ToolName,
    [property: Id(2)] string[] Fields,
    [property: Id(3)] int? MaxItems,
    [property: Id(4)] int? MaxBytes,
    [property: Id(5)] bool RedactPii,
    [property: Id(6)] string Reason,
    [property: Id(7)] string SetBy,
    [property: Id(8)] DateTimeOffset SetAt)
{
    public string Key => $"{ServerId}|{ToolName}";
}
