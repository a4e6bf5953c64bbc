using ControlPlane.Availability;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace ControlPlane.Grains.GuardState;

/// <summary>
/// Owns the cluster's kill switches, token revocations and tool policy. A change is durable before it is pushed,
/// and pushed to every silo before the caller hears back, so an operator's 2xx means "in force everywhere". Memory
/// never runs ahead of the store: a change is made on a copy, which becomes the grain's state only once written, so
/// a change the store refused is neither served, nor pushed, nor reported as already set to a retry; and every
/// durable change gets a new stamp, so no silo can mistake one state for another of the same number.
/// </summary>
public sealed partial class GuardStateGrain(
    [PersistentState("guard-state", StorageNames.ControlPlane)] IPersistentState<GuardStateRecord> state,
    TimeProvider time,
    IClusterMembershipService membership,
    GuardStatePushClient push,
    IOptions<GuardStatePushOptions> pushOptions,
    ILogger<GuardStateGrain> logger) : Grain, IGuardStateGrain
{
    private const int HistoryLimit = 500;
    private static readonly TimeSpan ReloadInterval = TimeSpan.FromSeconds(1);
    private GuardStateSnapshot? _snapshot;

    /// <summary>
    /// Set when a write failed and reading the store back failed too: whether the write landed is unknown until the
    /// store answers. Until then changes re-read first, and a timer keeps trying so silos converge without one.
    /// </summary>
    private IGrainTimer? _reload;

    public Task<long> GetVersionAsync() => Task.FromResult(state.State.Version);

    public Task<GuardStateVersion> GetVersionStampAsync() => Task.FromResult(new GuardStateVersion(state.State.Version, state.State.Stamp));

    public Task<GuardStateSnapshot> GetSnapshotAsync() => Task.FromResult(Snapshot());

    public async Task<KillSwitchChange> SetKillSwitchAsync(KillTarget target, string reason, string setBy)
    {
        var problems = target.Validate();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(target));
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));

        await EnsureCurrentAsync();
        var key = target.Key;
        var existing = state.State.Switches.Find(s => s.Target.Key == key);
        if (existing is not null)
        {
            return new KillSwitchChange(existing, Created: false, state.State.Version);
        }

        var now = time.GetUtcNow();
        var killSwitch = new KillSwitch("ks_" + Guid.NewGuid().ToString("N")[..16], target, reason, setBy, now);
        var next = state.State.Copy();
        next.Switches.Add(killSwitch);
        Record(next, new KillSwitchEvent(killSwitch.Id, target, "set", reason, setBy, now));
        await CommitAsync(next);
        return new KillSwitchChange(killSwitch, Created: true, state.State.Version);
    }

    public async Task<KillSwitch?> ClearKillSwitchAsync(string switchId, string reason, string clearedBy)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));

        await EnsureCurrentAsync();
        var existing = state.State.Switches.Find(s => s.Id == switchId);
        if (existing is null) return null;

        var next = state.State.Copy();
        next.Switches.Remove(existing);
        Record(next, new KillSwitchEvent(existing.Id, existing.Target, "clear", reason, clearedBy, time.GetUtcNow()));
        await CommitAsync(next);
        return existing;
    }

    public async Task<long> RevokeTokenAsync(string tokenId, DateTimeOffset? expiresAt)
    {
        await EnsureCurrentAsync();
        if (state.State.Revoked.Exists(r => r.TokenId == tokenId)) return state.State.Version;

        // Tokens that have expired anyway need no revocation entry; drop them so the snapshot stays small.
        var now = time.GetUtcNow();
        var next = state.State.Copy();
        next.Revoked.RemoveAll(r => r.ExpiresAt is { } at && at <= now);
        next.Revoked.Add(new RevokedToken(tokenId, expiresAt));
        await CommitAsync(next);
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
        await EnsureCurrentAsync();
        var setting = new ServerModeSetting(tenantId, serverId, readWrite, reason, setBy, time.GetUtcNow());
        var next = state.State.Copy();
        next.ServerModes.RemoveAll(m => m.Key == setting.Key);
        if (readWrite) next.ServerModes.Add(setting);
        RecordPolicy(next, "server-mode", $"{tenantId}/{serverId}", readWrite ? "read-write" : "read-only", reason, setBy);
        await CommitAsync(next);
        return setting;
    }

    public async Task<ToolClassificationOverride> SetClassificationAsync(string serverId, string toolName, string? tenantId, bool isAction, string reason, string setBy)
    {
        RequireReason(reason);
        await EnsureCurrentAsync();
        var entry = new ToolClassificationOverride(serverId, toolName, tenantId, isAction, reason, setBy, time.GetUtcNow());
        var next = state.State.Copy();
        next.ClassificationOverrides.RemoveAll(o => o.Key == entry.Key);
        next.ClassificationOverrides.Add(entry);
        RecordPolicy(next, "classification", entry.Key, isAction ? "action" : "read", reason, setBy);
        await CommitAsync(next);
        return entry;
    }

    public async Task<SchemaOverride?> SetSchemaOverrideAsync(string serverId, string toolName, string? tenantId, string? schemaJson, string reason, string setBy)
    {
        RequireReason(reason);
        await EnsureCurrentAsync();
        var entry = schemaJson is null ? null : new SchemaOverride(serverId, toolName, tenantId, schemaJson, reason, setBy, time.GetUtcNow());
        var key = tenantId is null ? $"{serverId}|{toolName}" : $"{serverId}|{toolName}|{tenantId}";
        var next = state.State.Copy();
        next.SchemaOverrides.RemoveAll(o => o.Key == key);
        if (entry is not null) next.SchemaOverrides.Add(entry);
        RecordPolicy(next, "schema", key, entry is null ? "removed" : "set", reason, setBy);
        await CommitAsync(next);
        return entry;
    }

    public async Task SetRateLimitAsync(ControlPlane.RateLimits.RateLimitSetting setting)
    {
        await EnsureCurrentAsync();
        var next = state.State.Copy();
        next.RateLimits.RemoveAll(r => r.Key == setting.Key);
        if (setting.Capacity > 0) next.RateLimits.Add(setting);
        RecordPolicy(next, "rate-limit", setting.Key, setting.Capacity > 0 ? $"{setting.Capacity} at {setting.RefillPerSecond}/s" : "removed", "rate limit", setting.SetBy);
        await CommitAsync(next);
    }

    public async Task SetProjectionAsync(string serverId, string toolName, ProjectionSetting? projection, string reason, string setBy)
    {
        RequireReason(reason);
        await EnsureCurrentAsync();
        var next = state.State.Copy();
        next.Projections.RemoveAll(p => p.ServerId == serverId && p.ToolName == toolName);
        if (projection is not null) next.Projections.Add(projection);
        RecordPolicy(next, "projection", $"{serverId}|{toolName}", projection is null ? "removed" : "set", reason, setBy);
        await CommitAsync(next);
    }

    public Task<PolicyEvent[]> GetPolicyHistoryAsync(int limit) =>
        Task.FromResult(state.State.PolicyHistory.AsEnumerable().Reverse().Take(Math.Clamp(limit, 1, HistoryLimit)).ToArray());

    private static void RequireReason(string reason)
    {
        if (string.IsNullOrWhiteSpace(reason)) throw new ArgumentException("A reason is required.", nameof(reason));
    }

    private void RecordPolicy(GuardStateRecord record, string kind, string subject, string value, string reason, string by)
    {
        record.PolicyHistory.Add(new PolicyEvent(kind, subject, value, reason, by, time.GetUtcNow()));
        if (record.PolicyHistory.Count > HistoryLimit) record.PolicyHistory.RemoveRange(0, record.PolicyHistory.Count - HistoryLimit);
    }

    private static void Record(GuardStateRecord record, KillSwitchEvent e)
    {
        record.History.Add(e);
        if (record.History.Count > HistoryLimit) record.History.RemoveRange(0, record.History.Count - HistoryLimit);
    }

    /// <summary>
    /// Makes <paramref name="next"/> the state, if the store takes it. Only then is it served and pushed. A write that
    /// failed may still have landed (a timeout after the commit), so the store is read back: if it holds the change,
    /// the change stands; if not, the grain holds what the store holds and the caller gets
    /// <see cref="StoreUnavailableException"/>; if the store cannot be read either, the grain keeps its last durable
    /// state and re-reads before anything else.
    /// </summary>
    private async Task CommitAsync(GuardStateRecord next)
    {
        var previous = state.State;
        next.Version = previous.Version + 1;
        next.Stamp = Guid.NewGuid().ToString("N");
        state.State = next;
        _snapshot = null;
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception writeFailure)
        {
            try
            {
                await state.ReadStateAsync();
            }
            catch (Exception)
            {
                state.State = previous;
                _snapshot = null;
                ReloadLater();
                throw StoreUnavailableException.GrainStore("The guard-state change", writeFailure);
            }

            _snapshot = null;
            if (state.State.Stamp != next.Stamp)
            {
                LogChangeRefused(logger, writeFailure, next.Version);
                // What the store holds may not be what this grain last pushed (an earlier write that landed late).
                if (state.State.Stamp != previous.Stamp) await BroadcastAsync(Snapshot());
                throw StoreUnavailableException.GrainStore("The guard-state change", writeFailure);
            }

            LogLandedDespiteFailure(logger, next.Version);
        }

        await BroadcastAsync(Snapshot());
    }

    /// <summary>Re-reads the store if a failed write left it unknown whether the grain holds what the store holds.</summary>
    private async Task EnsureCurrentAsync()
    {
        if (_reload is null) return;
        var before = state.State.Stamp;
        try
        {
            await state.ReadStateAsync();
        }
        catch (Exception ex)
        {
            throw StoreUnavailableException.GrainStore("Guard state", ex);
        }

        _reload.Dispose();
        _reload = null;
        _snapshot = null;
        if (state.State.Stamp != before) await BroadcastAsync(Snapshot());
    }

    private void ReloadLater() => _reload ??= this.RegisterGrainTimer(
        static async (grain, _) =>
        {
            try
            {
                await grain.EnsureCurrentAsync();
            }
            catch (StoreUnavailableException)
            {
                // Still down: the next tick tries again.
            }
        },
        this,
        new GrainTimerCreationOptions { DueTime = ReloadInterval, Period = ReloadInterval, Interleave = false });

    private GuardStateSnapshot Snapshot() => _snapshot ??= new GuardStateSnapshot(
        state.State.Version,
        [.. state.State.Switches],
        [.. state.State.Revoked],
        [.. state.State.ServerModes],
        [.. state.State.ClassificationOverrides],
        [.. state.State.SchemaOverrides],
        [.. state.State.RateLimits],
        [.. state.State.Projections],
        state.State.Stamp);

    /// <summary>
    /// Pushes to every silo that is, or is becoming, a member, each with its own deadline: a dead silo the cluster has
    /// not yet declared dead, or one cut off, costs a flip at most <see cref="GuardStatePushOptions.PushTimeout"/>.
    /// A silo that missed the push catches up by its version poll, or stops trusting its state and refuses actions.
    /// </summary>
    private async Task BroadcastAsync(GuardStateSnapshot snapshot)
    {
        var silos = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status is SiloStatus.Active or SiloStatus.Joining)
            .Select(m => m.SiloAddress)
            .ToArray();
        var timeout = pushOptions.Value.PushTimeout;
        var taken = await Task.WhenAll(silos.Select(silo => PushAsync(silo, snapshot, timeout)));
        var missed = silos.Where((_, i) => !taken[i]).ToArray();
        if (missed.Length > 0) LogPushMissed(logger, snapshot.Version, missed.Length, silos.Length, string.Join(", ", missed.Select(s => s.ToString())));
    }

    private async Task<bool> PushAsync(SiloAddress silo, GuardStateSnapshot snapshot, TimeSpan timeout)
    {
        try
        {
            var held = await push.On(silo).ApplyAsync(snapshot).WaitAsync(timeout);
            return held.Held.Version >= snapshot.Version;
        }
        catch (Exception ex)
        {
            LogPushFailed(logger, ex, snapshot.Version, silo.ToString());
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Guard state version {Version} was not written: the store refused it, and nothing changed.")]
    private static partial void LogChangeRefused(ILogger logger, Exception ex, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Guard state version {Version} reported a failed write but the store holds it; it stands.")]
    private static partial void LogLandedDespiteFailure(ILogger logger, long version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Guard state version {Version} is durable but {Missed} of {Silos} silos did not take the push ({MissedSilos}); they catch up by polling, or refuse actions once their state is stale.")]
    private static partial void LogPushMissed(ILogger logger, long version, int missed, int silos, string missedSilos);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Pushing guard state version {Version} to silo {Silo} failed.")]
    private static partial void LogPushFailed(ILogger logger, Exception ex, long version, string silo);
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

    /// <summary>New with every durable change: tells two states of one version apart.</summary>
    [Id(10)] public string? Stamp { get; set; }

    /// <summary>A copy to change: the lists are new, their entries (immutable records) shared.</summary>
    public GuardStateRecord Copy() => new()
    {
        Version = Version,
        Switches = [.. Switches],
        Revoked = [.. Revoked],
        History = [.. History],
        ServerModes = [.. ServerModes],
        ClassificationOverrides = [.. ClassificationOverrides],
        SchemaOverrides = [.. SchemaOverrides],
        PolicyHistory = [.. PolicyHistory],
        RateLimits = [.. RateLimits],
        Projections = [.. Projections],
        Stamp = Stamp,
    };
}
