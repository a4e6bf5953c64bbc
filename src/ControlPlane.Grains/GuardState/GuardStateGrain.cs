using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ControlPlane.Grains.GuardState;

/// <summary>
/// Owns the cluster's kill switches and token revocations. A change is durable before it is pushed,
/// and pushed to every silo before the caller hears back, so an operator's 200 means "in force everywhere".
/// </summary>
public sealed partial class GuardStateGrain(
    [PersistentState("guard-state", StorageNames.ControlPlane)] IPersistentState<GuardStateRecord> state,
    TimeProvider time,
    ILogger<GuardStateGrain> logger) : Grain, IGuardStateGrain
{
    private const int HistoryLimit = 500;
    private GuardStateSnapshot? _snapshot;

    public Task<long> GetVersionAsync() => Task.FromResult(state.State.Version);

    public Task<GuardStateSnapshot> GetSnapshotAsync() => Task.FromResult(Snapshot());

    public async Task<KillSwitchChange> SetKillSwitchAsync(KillTarget target, string reason, string setBy)
    {
        var problems = target.Validate();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(target));
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));

        var key = target.Key;
        var existing = state.State.Switches.Find(s => s.Target.Key == key);
        if (existing is not null)
        {
            return new KillSwitchChange(existing, Created: false, state.State.Version);
        }

        var now = time.GetUtcNow();
        var killSwitch = new KillSwitch("ks_" + Guid.NewGuid().ToString("N")[..16], target, reason, setBy, now);
        state.State.Switches.Add(killSwitch);
        Record(new KillSwitchEvent(killSwitch.Id, target, "set", reason, setBy, now));
        await CommitAsync();
        return new KillSwitchChange(killSwitch, Created: true, state.State.Version);
    }

    public async Task<KillSwitch?> ClearKillSwitchAsync(string switchId, string reason, string clearedBy)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));

        var existing = state.State.Switches.Find(s => s.Id == switchId);
        if (existing is null) return null;

        state.State.Switches.Remove(existing);
        Record(new KillSwitchEvent(existing.Id, existing.Target, "clear", reason, clearedBy, time.GetUtcNow()));
        await CommitAsync();
        return existing;
    }

    public async Task<long> RevokeTokenAsync(string tokenId, DateTimeOffset? expiresAt)
    {
        if (state.State.Revoked.Exists(r => r.TokenId == tokenId)) return state.State.Version;

        // Tokens that have expired anyway need no revocation entry; drop them so the snapshot stays small.
        var now = time.GetUtcNow();
        state.State.Revoked.RemoveAll(r => r.ExpiresAt is { } at && at <= now);
        state.State.Revoked.Add(new RevokedToken(tokenId, expiresAt));
        await CommitAsync();
        return state.State.Version;
    }

    public Task<KillSwitchEvent[]> GetHistoryAsync(int limit)
    {
        var events = state.State.History
            .AsEnumerable().Reverse().Take(Math.Clamp(limit, 1, HistoryLimit)).ToArray();
        return Task.FromResult(events);
    }

    public async Task<ServerModeSetting> SetServerModeAsync(string tenantId, string serverId, bool readWrite, string reason, string setBy)
    {
        RequireReason(reason);
        var setting = new ServerModeSetting(tenantId, serverId, readWrite, reason, setBy, time.GetUtcNow());
        state.State.ServerModes.RemoveAll(m => m.Key == setting.Key);
        if (readWrite) state.State.ServerModes.Add(setting);
        RecordPolicy("server-mode", $"{tenantId}/{serverId}", readWrite ? "read-write" : "read-only", reason, setBy);
        await CommitAsync();
        return setting;
    }

    public async Task<ToolClassificationOverride> SetClassificationAsync(string serverId, string toolName, string? tenantId, bool isAction, string reason, string setBy)
    {
        RequireReason(reason);
        var entry = new ToolClassificationOverride(serverId, toolName, tenantId, isAction, reason, setBy, time.GetUtcNow());
        state.State.ClassificationOverrides.RemoveAll(o => o.Key == entry.Key);
        state.State.ClassificationOverrides.Add(entry);
        RecordPolicy("classification", entry.Key, isAction ? "action" : "read", reason, setBy);
        await CommitAsync();
        return entry;
    }

    public async Task<SchemaOverride?> SetSchemaOverrideAsync(string serverId, string toolName, string? tenantId, string? schemaJson, string reason, string setBy)
    {
        RequireReason(reason);
        var entry = schemaJson is null ? null : new SchemaOverride(serverId, toolName, tenantId, schemaJson, reason, setBy, time.GetUtcNow());
        var key = tenantId is null ? $"{serverId}|{toolName}" : $"{serverId}|{toolName}|{tenantId}";
        state.State.SchemaOverrides.RemoveAll(o => o.Key == key);
        if (entry is not null) state.State.SchemaOverrides.Add(entry);
        RecordPolicy("schema", key, entry is null ? "removed" : "set", reason, setBy);
        await CommitAsync();
        return entry;
    }

    public async Task SetRateLimitAsync(ControlPlane.RateLimits.RateLimitSetting setting)
    {
        state.State.RateLimits.RemoveAll(r => r.Key == setting.Key);
        if (setting.Capacity > 0) state.State.RateLimits.Add(setting);
        RecordPolicy("rate-limit", setting.Key, setting.Capacity > 0 ? $"{setting.Capacity} at {setting.RefillPerSecond}/s" : "removed", "rate limit", setting.SetBy);
        await CommitAsync();
    }

    public async Task SetProjectionAsync(string serverId, string toolName, ProjectionSetting? projection, string reason, string setBy)
    {
        RequireReason(reason);
        state.State.Projections.RemoveAll(p => p.ServerId == serverId && p.ToolName == toolName);
        if (projection is not null) state.State.Projections.Add(projection);
        RecordPolicy("projection", $"{serverId}|{toolName}", projection is null ? "removed" : "set", reason, setBy);
        await CommitAsync();
    }

    public Task<PolicyEvent[]> GetPolicyHistoryAsync(int limit) =>
        Task.FromResult(state.State.PolicyHistory.AsEnumerable().Reverse().Take(Math.Clamp(limit, 1, HistoryLimit)).ToArray());

    private static void RequireReason(string reason)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));
    }

    private void RecordPolicy(string kind, string subject, string value, string reason, string by)
    {
        state.State.PolicyHistory.Add(new PolicyEvent(kind, subject, value, reason, by, time.GetUtcNow()));
        if (state.State.PolicyHistory.Count > HistoryLimit) state.State.PolicyHistory.RemoveRange(0, state.State.PolicyHistory.Count - HistoryLimit);
    }

    private void Record(KillSwitchEvent e)
    {
        state.State.History.Add(e);
        if (state.State.History.Count > HistoryLimit) state.State.History.RemoveRange(0, state.State.History.Count - HistoryLimit);
    }

    private async Task CommitAsync()
    {
        state.State.Version++;
        _snapshot = null;
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            // Nothing was made durable: reload so memory never runs ahead of storage.
            await state.ReadStateAsync();
            _snapshot = null;
            throw;
        }

        await BroadcastAsync(Snapshot());
    }

    private GuardStateSnapshot Snapshot() => _snapshot ??= new GuardStateSnapshot(
        state.State.Version,
        [.. state.State.Switches],
        [.. state.State.Revoked],
        [.. state.State.ServerModes],
        [.. state.State.ClassificationOverrides],
        [.. state.State.SchemaOverrides],
        [.. state.State.RateLimits],
        [.. state.State.Projections]);

    private async Task BroadcastAsync(GuardStateSnapshot snapshot)
    {
        try
        {
            var management = GrainFactory.GetGrain<IManagementGrain>(0);
            await management.SendControlCommandToProvider<GuardStateReceiver>(
                GuardStateReceiver.ProviderName, GuardStateReceiver.ApplySnapshotCommand, snapshot);
        }
        catch (Exception ex)
        {
            // The change is durable; silos that missed the push catch up on their next version check
            // (and refuse actions meanwhile if their state goes stale). Tell the operator's logs.
            LogBroadcastFailed(logger, ex, snapshot.Version);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Guard state version {Version} is durable but could not be pushed to every silo; pollers will catch up.")]
    private static partial void LogBroadcastFailed(ILogger logger, Exception ex, long version);
}

[GenerateSerializer, Alias("cp.GuardStateRecord")]
public sealed class GuardStateRecord
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public List<KillSwitch> Switches { get; set; } = [];
    [Id(2)] public List<RevokedToken> Revoked { get; set; } = [];
    [Id(3)] public List<KillSwitchEvent> History { get; set; } = [];
    [Id(4)] public List<ServerModeSetting> ServerModes { get; set; } = [];
    [Id(5)] public List<ToolClassificationOverride> ClassificationOverrides { get; set; } = [];
    [Id(6)] public List<SchemaOverride> SchemaOverrides { get; set; } = [];
    [Id(7)] public List<PolicyEvent> PolicyHistory { get; set; } = [];
    [Id(8)] public List<ControlPlane.RateLimits.RateLimitSetting> RateLimits { get; set; } = [];
    [Id(9)] public List<ProjectionSetting> Projections { get; set; } = [];
}
