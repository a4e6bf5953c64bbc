namespace ControlPlane.Sessions;

/// <summary>The identity of one MCP session: one agent acting for one user in one tenant.</summary>
[GenerateSerializer, Immutable, Alias("cp.SessionInfo")]
public sealed record SessionInfo(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string TenantId,
    [property: Id(2)] string AgentId,
    [property: Id(3)] string? UserId,
    [property: Id(4)] string TokenId,
    [property: Id(5)] DateTimeOffset OpenedAt,
    [property: Id(6)] string OpenedOnSilo);

[Alias("cp.ISessionGrain")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>
    /// Records who the session belongs to. The first caller fixes the identity; a later call with a
    /// different tenant or agent is refused (returns false), so a session id can never change hands.
    /// </summary>
    [Alias("Open")]
    Task<bool> OpenAsync(SessionInfo info);

    [Alias("Get"), AlwaysInterleave]
    Task<SessionInfo?> GetAsync();
}
