namespace ControlPlane.Host.Seeding;

/// <summary>The embedded default's demo credentials, as written to <c>&lt;DataDir&gt;/demo-credentials.json</c>.</summary>
public sealed record DemoCredentials(
    string McpUrl,
    string AgentToken,
    string OperatorKey,
    string TenantId,
    string AgentId,
    string UserId,
    string ConsoleUrl,
    string ConsoleUser,
    string ConsolePassword)
{
    public const string FileName = "demo-credentials.json";
}
