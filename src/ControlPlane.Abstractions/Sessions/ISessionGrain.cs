namespace ControlPlane.Sessions;

/// <summary>The identity of one MCP session: one agent acting for one user in one tenant.</summary>
/// <param name="Endpoint">The server id of the endpoint it was opened on (<c>/mcp/{id}</c>), or null for <c>/mcp</c>.</param>
/// <param name="Handshake">
/// The client's initialize request as MCP JSON (protocol version, capabilities, client info), kept so that the
/// session can be resumed on any silo after it was parked or its silo went away; null when it is not resumable.
/// </param>
[GenerateSerializer, Immutable, Alias("cp.SessionInfo")]
public sealed record SessionInfo(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string TenantId,
    [property: Id(2)] string AgentId,
    [property: Id(3)] string? UserId,
    [property: Id(4)] string TokenId,
    [property: Id(5)] DateTimeOffset OpenedAt,
    [property: Id(6)] string OpenedOnSilo,
    [property: Id(7)] string? Endpoint = null,
    [property: Id(8)] string? Handshake = null);

[Alias("cp.ISessionGrain")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>
    /// How often a session in use has its record written again, so that retention (which goes by the last write) keeps
    /// it: by the silo serving it live, and when it is resumed.
    /// </summary>
    public static readonly TimeSpan RecordRefreshInterval = TimeSpan.FromHours(1);

    /// <summary>
    /// Records who the session belongs to. The first caller fixes the identity; a later call with a
    /// different tenant or agent is refused (returns false), so a session id can never change hands.
    /// </summary>
    [Alias("Open")]
    Task<bool> OpenAsync(SessionInfo info);

    [Alias("Get"), AlwaysInterleave]
    Task<SessionInfo?> GetAsync();

    /// <summary>
    /// The handshake to rebuild the session with on this silo, or null when it may not be resumed: it was never
    /// opened resumably, it was closed, or the caller's token or endpoint is not the one it was opened with.
    /// </summary>
    [Alias("Resume")]
    Task<string?> ResumeAsync(string tokenId, string? endpoint);

    /// <summary>
    /// The session is still in use on a silo: its record is written again (if it is open and the token is its own), so
    /// retention keeps it. The caller decides how often.
    /// </summary>
    [Alias("Touch")]
    Task TouchAsync(string tokenId);

    /// <summary>The client ended the session (HTTP DELETE): it can no longer be resumed. Only its own token may close it.</summary>
    [Alias("Close")]
    Task<bool> CloseAsync(string tokenId, DateTimeOffset closedAt);
}
