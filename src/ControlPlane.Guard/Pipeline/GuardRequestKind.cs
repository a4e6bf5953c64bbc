namespace ControlPlane.Guard.Pipeline;

/// <summary>The MCP requests the guard decides. Each passes the same stages; a stage skips a kind where it means nothing.</summary>
public enum GuardRequestKind
{
    ToolCall,
    ResourceRead,
    ResourceSubscribe,
    PromptGet,
    Completion,
}

/// <summary>The MCP method names of <see cref="GuardRequestKind"/>, as the audit records them.</summary>
public static class GuardRequestKinds
{
    public const string ToolCall = "tools/call";
    public const string ResourceRead = "resources/read";
    public const string ResourceSubscribe = "resources/subscribe";
    public const string ResourceUnsubscribe = "resources/unsubscribe";
    public const string PromptGet = "prompts/get";
    public const string Completion = "completion/complete";

    public static string WireName(this GuardRequestKind kind) => kind switch
    {
        GuardRequestKind.ToolCall => ToolCall,
        GuardRequestKind.ResourceRead => ResourceRead,
        GuardRequestKind.ResourceSubscribe => ResourceSubscribe,
        GuardRequestKind.PromptGet => PromptGet,
        GuardRequestKind.Completion => Completion,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
