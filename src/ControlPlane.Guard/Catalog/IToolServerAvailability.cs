namespace ControlPlane.Guard.Catalog;

/// <summary>
/// Says why a tool server the catalog knows has no tools for a tenant right now: an upstream still starting,
/// queued for a process slot, or stopped by a kill switch. A call to such a server is refused as unavailable,
/// with this reason, instead of failing as an unknown tool.
/// </summary>
public interface IToolServerAvailability
{
    /// <summary>Why the server does not serve this tenant now, or null if this source knows nothing of it.</summary>
    string? WhyUnavailable(string serverId, string tenantId);
}
