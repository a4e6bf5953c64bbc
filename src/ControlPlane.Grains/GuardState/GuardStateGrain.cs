using ControlPlane.Availability;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Storage;

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
    IOptions<GuardStateBoundsOptions> bounds,
    ILogger<GuardStateGrain> logger) : Grain, IGuardStateGrain
{
    private static readonly TimeSpan ReloadInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a flip, already in force, waits for its history entry before leaving it for the next flip.</summary>
    private static readonly TimeSpan HistoryWait = TimeSpan.FromSeconds(2);

    private GuardStateSnapshot? _snapshot;

    /// <summary>Serialized size of the state held, measured as the store's serializer writes it; -1 until measured.</summary>
    private int _recordBytes = -1;

    /// <summary>History not yet taken by the history grain (it was down, or slow): sent again with the next flip.</summary>
    private readonly List<KillSwitchEvent> _pendingFlips = [];
    private readonly List<PolicyEvent> _pendingPolicy = [];

    /// <summary>
    /// True once the history a record written before the history grain existed carried has been handed to that grain;
    /// from then on commits drop it from the record.
    /// </summary>
    private bool _legacyHandedOver;

    private IGuardHistoryGrain HistoryGrain => GrainFactory.GetGrain<IGuardHistoryGrain>(IGuardHistoryGrain.Singleton);

    /// <summary>
    /// Set when a write failed and reading the store back failed too: whether the write landed is unknown until the
    /// store answers. Until then changes re-read first, and a timer keeps trying so silos converge without one.
    /// </summary>
    private IGrainTimer? _reload;

    public Task<long> GetVersionAsync() => Task.FromResult(state.State.Version);

    public Task<GuardStateVersion> GetVersionStampAsync() => Task.FromResult(new GuardStateVersion(state.State.Version, state.State.Stamp));

    public Task<GuardStateSnapshot> GetSnapshotAsync() => Task.FromResult(Snapshot());

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // A record written before the history moved out still carries it: hand it over with the first flip.
        _pendingFlips.AddRange(state.State.History.TakeLast(GuardStateLimits.HistoryKept));
        _pendingPolicy.AddRange(state.State.PolicyHistory.TakeLast(GuardStateLimits.HistoryKept));
        _legacyHandedOver = _pendingFlips.Count == 0 && _pendingPolicy.Count == 0;
        return base.OnActivateAsync(cancellationToken);
    }

    public async Task<KillSwitchChange> SetKillSwitchAsync(KillTarget target, string reason, string setBy)
    {
        foreach (var (field, problem) in GuardStateLimits.TargetProblems(target)) throw GuardStateLimitException.Invalid(field, problem);
        var problems = target.Validate();
        if (problems.Count > 0) throw GuardStateLimitException.Invalid("scope", string.Join("; ", problems));
        RequireReason(reason);
        RequireActor(setBy);

        await EnsureCurrentAsync();
        var key = target.Key;
        var existing = state.State.Switches.Find(s => s.Target.Key == key);
        if (existing is not null)
        {
            return new KillSwitchChange(existing, Created: false, state.State.Version);
        }

        RequireRoom(state.State.Switches.Count(s => s.Target.TenantId == target.TenantId), GuardStateLimits.MaxKillSwitchesPerTenant,
            "killSwitches", target.TenantId, "active kill switches",
            "clear those no longer needed (GET /api/v1/kill-switches), or set one wider switch (scope 'tenant') that covers them");
        var now = time.GetUtcNow();
        var killSwitch = new KillSwitch("ks_" + Guid.NewGuid().ToString("N")[..16], target, reason, setBy, now);
        var next = state.State.Copy();
        next.Switches.Add(killSwitch);
        await CommitAsync(next, Room.Protective, flip: new KillSwitchEvent(killSwitch.Id, target, "set", reason, setBy, now));
        return new KillSwitchChange(killSwitch, Created: true, state.State.Version);
    }

    public async Task<KillSwitch?> ClearKillSwitchAsync(string switchId, string reason, string clearedBy)
    {
        RequireReason(reason);
        RequireActor(clearedBy);

        await EnsureCurrentAsync();
        var existing = state.State.Switches.Find(s => s.Id == switchId);
        if (existing is null) return null;

        var next = state.State.Copy();
        next.Switches.Remove(existing);
        await CommitAsync(next, Room.Protective, flip: new KillSwitchEvent(existing.Id, existing.Target, "clear", reason, clearedBy, time.GetUtcNow()));
        return existing;
    }

    public async Task<long> RevokeTokenAsync(string tokenId, DateTimeOffset? expiresAt)
    {
        if (GuardStateLimits.IdProblem(tokenId) is { } problem) throw GuardStateLimitException.Invalid("tokenId", problem);
        await EnsureCurrentAsync();
        if (state.State.Revoked.Exists(r => r.TokenId == tokenId)) return state.State.Version;

        // Tokens that have expired anyway need no revocation entry; drop them so the snapshot stays small.
        var now = time.GetUtcNow();
        var next = state.State.Copy();
        next.Revoked.RemoveAll(r => r.ExpiresAt is { } at && at <= now);
        next.Revoked.Add(new RevokedToken(tokenId, expiresAt));
        // Never refused for room: a revocation only stops an agent, and expired ones are dropped above.
        await CommitAsync(next, Room.Always);
        return state.State.Version;
    }

    public async Task<KillSwitchEvent[]> GetHistoryAsync(int limit)
    {
        limit = Math.Clamp(limit, 1, GuardStateLimits.HistoryKept);
        var held = await HistoryGrain.GetFlipsAsync(limit);
        return [.. _pendingFlips.AsEnumerable().Reverse().Concat(held).Distinct().Take(limit)];
    }

    public async Task<ServerModeSetting> SetServerModeAsync(string tenantId, string serverId, bool readWrite, string reason, string setBy)
    {
        RequireId(tenantId, "tenantId");
        RequireId(serverId, "serverId");
        RequireReason(reason);
        RequireActor(setBy);
        await EnsureCurrentAsync();
        var setting = new ServerModeSetting(tenantId, serverId, readWrite, reason, setBy, time.GetUtcNow());
        if (readWrite && !state.State.ServerModes.Exists(m => m.Key == setting.Key))
        {
            RequireRoom(state.State.ServerModes.Count(m => m.TenantId == tenantId), GuardStateLimits.MaxServerModesPerTenant,
                "serverModes", tenantId, "servers in read-write mode", "set servers the tenant no longer writes to back to read-only");
        }

        var next = state.State.Copy();
        next.ServerModes.RemoveAll(m => m.Key == setting.Key);
        if (readWrite) next.ServerModes.Add(setting);
        await CommitAsync(next, readWrite ? Room.Policy : Room.Protective,
            policy: Policy("server-mode", $"{tenantId}/{serverId}", readWrite ? "read-write" : "read-only", reason, setBy));
        return setting;
    }

    public async Task<ToolClassificationOverride> SetClassificationAsync(string serverId, string toolName, string? tenantId, bool isAction, string reason, string setBy)
    {
        RequireTool(serverId, toolName, tenantId);
        RequireReason(reason);
        RequireActor(setBy);
        await EnsureCurrentAsync();
        var entry = new ToolClassificationOverride(serverId, toolName, tenantId, isAction, reason, setBy, time.GetUtcNow());
        if (!state.State.ClassificationOverrides.Exists(o => o.Key == entry.Key))
        {
            RequireRoom(state.State.ClassificationOverrides.Count(o => o.TenantId == tenantId), GuardStateLimits.MaxClassificationOverridesPerTenant,
                "classificationOverrides", tenantId, "classification overrides", "remove overrides no longer needed");
        }

        var next = state.State.Copy();
        next.ClassificationOverrides.RemoveAll(o => o.Key == entry.Key);
        next.ClassificationOverrides.Add(entry);
        await CommitAsync(next, isAction ? Room.Protective : Room.Policy, policy: Policy("classification", entry.Key, isAction ? "action" : "read", reason, setBy));
        return entry;
    }

    public async Task<SchemaOverride?> SetSchemaOverrideAsync(string serverId, string toolName, string? tenantId, string? schemaJson, string reason, string setBy)
    {
        RequireTool(serverId, toolName, tenantId);
        RequireReason(reason);
        RequireActor(setBy);
        if (schemaJson is { Length: > GuardStateLimits.MaxSchemaLength })
        {
            throw GuardStateLimitException.Invalid("schema", $"A schema override is at most {GuardStateLimits.MaxSchemaLength} characters of JSON (this one has {schemaJson.Length}).");
        }

        await EnsureCurrentAsync();
        var entry = schemaJson is null ? null : new SchemaOverride(serverId, toolName, tenantId, schemaJson, reason, setBy, time.GetUtcNow());
        var key = tenantId is null ? $"{serverId}|{toolName}" : $"{serverId}|{toolName}|{tenantId}";
        if (entry is not null && !state.State.SchemaOverrides.Exists(o => o.Key == key))
        {
            RequireRoom(state.State.SchemaOverrides.Count(o => o.TenantId == tenantId), GuardStateLimits.MaxSchemaOverridesPerTenant,
                "schemaOverrides", tenantId, "schema overrides", "remove overrides no longer needed (PUT .../schema with \"schema\": null)");
        }

        var next = state.State.Copy();
        next.SchemaOverrides.RemoveAll(o => o.Key == key);
        if (entry is not null) next.SchemaOverrides.Add(entry);
        await CommitAsync(next, policy: Policy("schema", key, entry is null ? "removed" : "set", reason, setBy));
        return entry;
    }

    public async Task SetRateLimitAsync(ControlPlane.RateLimits.RateLimitSetting setting)
    {
        RequireId(setting.TenantId, "tenantId");
        RequireId(setting.Scope, "scope");
        if (GuardStateLimits.IdProblem(setting.Subject) is { } subject) throw GuardStateLimitException.Invalid("subject", subject);
        RequireActor(setting.SetBy);
        await EnsureCurrentAsync();
        if (setting.Capacity > 0 && !state.State.RateLimits.Exists(r => r.Key == setting.Key))
        {
            RequireRoom(state.State.RateLimits.Count(r => r.TenantId == setting.TenantId), GuardStateLimits.MaxRateLimitsPerTenant,
                "rateLimits", setting.TenantId, "rate limits", "remove limits no longer needed (capacity 0), or use one limit without an id for each agent, user or tool");
        }

        var next = state.State.Copy();
        next.RateLimits.RemoveAll(r => r.Key == setting.Key);
        if (setting.Capacity > 0) next.RateLimits.Add(setting);
        await CommitAsync(next, policy: Policy("rate-limit", setting.Key, setting.Capacity > 0 ? $"{setting.Capacity} at {setting.RefillPerSecond}/s" : "removed", "rate limit", setting.SetBy));
    }

    public async Task SetProjectionAsync(string serverId, string toolName, ProjectionSetting? projection, string reason, string setBy)
    {
        RequireTool(serverId, toolName, tenantId: null);
        RequireReason(reason);
        RequireActor(setBy);
        if (projection is not null)
        {
            if (projection.ServerId != serverId || projection.ToolName != toolName) throw GuardStateLimitException.Invalid("projection", "The projection names another tool.");
            if (projection.Fields.Length > GuardStateLimits.MaxProjectionFields)
            {
                throw GuardStateLimitException.Invalid("fields", $"A projection keeps at most {GuardStateLimits.MaxProjectionFields} fields (this one names {projection.Fields.Length}).");
            }

            if (projection.Fields.Any(f => f is null || f.Length > GuardStateLimits.MaxPointerLength))
            {
                throw GuardStateLimitException.Invalid("fields", $"Each field is a JSON pointer of at most {GuardStateLimits.MaxPointerLength} characters.");
            }

            RequireReason(projection.Reason);
            RequireActor(projection.SetBy);
        }

        await EnsureCurrentAsync();
        if (projection is not null && !state.State.Projections.Exists(p => p.ServerId == serverId && p.ToolName == toolName))
        {
            RequireRoom(state.State.Projections.Count, GuardStateLimits.MaxProjections, "projections", null, "result projections", "remove projections no longer needed");
        }

        var next = state.State.Copy();
        next.Projections.RemoveAll(p => p.ServerId == serverId && p.ToolName == toolName);
        if (projection is not null) next.Projections.Add(projection);
        await CommitAsync(next, policy: Policy("projection", $"{serverId}|{toolName}", projection is null ? "removed" : "set", reason, setBy));
    }

    public async Task<PolicyEvent[]> GetPolicyHistoryAsync(int limit)
    {
        limit = Math.Clamp(limit, 1, GuardStateLimits.HistoryKept);
        var held = await HistoryGrain.GetPolicyAsync(limit);
        return [.. _pendingPolicy.AsEnumerable().Reverse().Concat(held).Distinct().Take(limit)];
    }

    private static void RequireReason(string? reason)
    {
        if (GuardStateLimits.ReasonProblem(reason) is { } problem) throw GuardStateLimitException.Invalid("reason", problem);
    }

    private static void RequireActor(string? by)
    {
        if (string.IsNullOrWhiteSpace(by) || GuardStateLimits.IdProblem(by, GuardStateLimits.MaxActorLength) is not null)
        {
            throw GuardStateLimitException.Invalid("setBy", $"Who acted is an operator id of 1-{GuardStateLimits.MaxActorLength} characters.");
        }
    }

    private static void RequireId(string? id, string field)
    {
        if (string.IsNullOrWhiteSpace(id)) throw GuardStateLimitException.Invalid(field, "Required.");
        if (GuardStateLimits.IdProblem(id) is { } problem) throw GuardStateLimitException.Invalid(field, problem);
    }

    private static void RequireTool(string serverId, string toolName, string? tenantId)
    {
        RequireId(serverId, "serverId");
        RequireId(toolName, "toolName");
        if (tenantId is not null) RequireId(tenantId, "tenantId");
    }

    /// <summary>Refuses to add an entry to a tenant (or, for null, to the cluster-wide entries) that holds its bound already.</summary>
    private static void RequireRoom(int held, int max, string what, string? tenantId, string noun, string remedy)
    {
        if (held < max) return;
        var whose = tenantId is null ? "every tenant" : $"tenant '{tenantId}'";
        throw GuardStateLimitException.NoRoom(what, $"There are already {held} {noun} for {whose}, the most the guard state keeps ({max}); nothing was changed. To add one, {remedy}.");
    }

    private PolicyEvent Policy(string kind, string subject, string value, string reason, string by) =>
        new(kind, subject, value, reason, by, time.GetUtcNow());

    /// <summary>
    /// Makes <paramref name="next"/> the state, if the store takes it. Only then is it served and pushed. A write that
    /// failed may still have landed (a timeout after the commit), so the store is read back: if it holds the change,
    /// the change stands; if not, the grain holds what the store holds and the caller gets
    /// <see cref="StoreUnavailableException"/>; if the store cannot be read either, the grain keeps its last durable
    /// state and re-reads before anything else.
    /// </summary>
    /// <remarks>
    /// A change that would take the record past <see cref="GuardStateBoundsOptions.MaxRecordBytes"/> (a protective
    /// one: past <see cref="GuardStateBoundsOptions.HardLimitBytes"/>) is refused before
    /// anything is written, unless it makes the record smaller. Its history entry goes to the history grain once the
    /// change is in force, never into the record.
    /// </remarks>
    private async Task CommitAsync(GuardStateRecord next, Room room = Room.Policy, KillSwitchEvent? flip = null, PolicyEvent? policy = null)
    {
        var previous = state.State;
        next.Version = previous.Version + 1;
        next.Stamp = Guid.NewGuid().ToString("N");
        if (_legacyHandedOver)
        {
            next.History = [];
            next.PolicyHistory = [];
        }

        var size = Measure(next);
        var bound = room switch
        {
            Room.Always => int.MaxValue,
            Room.Protective => bounds.Value.HardLimitBytes,
            _ => bounds.Value.MaxRecordBytes,
        };
        if (size > bound && size > RecordBytes())
        {
            LogRecordFull(logger, size, bound);
            throw GuardStateLimitException.NoRoom("guardState",
                $"The guard state record would grow to {size} bytes, past its bound of {bound}; nothing was changed. Clear kill switches, " +
                "overrides, rate limits or projections no longer needed (any tenant's), or ask for a larger ControlPlane:GuardState:MaxRecordBytes.");
        }

        state.State = next;
        _snapshot = null;
        _recordBytes = size;
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception writeFailure)
        {
            _recordBytes = -1;
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
        if (flip is not null) Pending(_pendingFlips, flip);
        if (policy is not null) Pending(_pendingPolicy, policy);
        await FlushHistoryAsync();
    }

    /// <summary>How much of the record's size bound a change may use.</summary>
    private enum Room
    {
        /// <summary>Policy that widens or configures: up to <see cref="GuardStateBoundsOptions.MaxRecordBytes"/>.</summary>
        Policy,

        /// <summary>Stops agents (a kill switch, read-only): may use the reserve, up to <see cref="GuardStateBoundsOptions.HardLimitBytes"/>.</summary>
        Protective,

        /// <summary>A token revocation: never refused for room (each is bounded, and dropped once the token would have expired).</summary>
        Always,
    }

    private static void Pending<T>(List<T> pending, T entry)
    {
        pending.Add(entry);
        if (pending.Count > GuardStateLimits.HistoryKept) pending.RemoveRange(0, pending.Count - GuardStateLimits.HistoryKept);
    }

    /// <summary>
    /// Hands history to the history grain. The change it records is already durable and in force, so a failure here
    /// fails nothing: the entries wait for the next flip (the audit trail holds every operator action regardless).
    /// </summary>
    private async Task FlushHistoryAsync()
    {
        if (_pendingFlips.Count == 0 && _pendingPolicy.Count == 0) return;
        var flips = _pendingFlips.ToArray();
        var policy = _pendingPolicy.ToArray();
        try
        {
            await HistoryGrain.AppendAsync(flips, policy).WaitAsync(HistoryWait);
            _pendingFlips.RemoveRange(0, Math.Min(flips.Length, _pendingFlips.Count));
            _pendingPolicy.RemoveRange(0, Math.Min(policy.Length, _pendingPolicy.Count));
            _legacyHandedOver = true;
        }
        catch (Exception ex)
        {
            LogHistoryDeferred(logger, ex, flips.Length + policy.Length);
        }
    }

    private int RecordBytes() => _recordBytes >= 0 ? _recordBytes : _recordBytes = Measure(state.State);

    /// <summary>The record's size as the store will hold it: serialized by the storage provider's own serializer.</summary>
    private int Measure(GuardStateRecord record) => Serializer.Serialize(record).ToMemory().Length;

    private IGrainStorageSerializer Serializer => _serializer ??=
        ServiceProvider.GetKeyedService<IGrainStorageSerializer>(StorageNames.ControlPlane) ?? ServiceProvider.GetRequiredService<IGrainStorageSerializer>();

    private IGrainStorageSerializer? _serializer;

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
        _recordBytes = -1;
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "A guard state change was refused: the record would grow to {Bytes} bytes, past its bound of {Bound}.")]
    private static partial void LogRecordFull(ILogger logger, int bytes, int bound);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} guard state history entries were not taken by the history grain; they are sent again with the next change.")]
    private static partial void LogHistoryDeferred(ILogger logger, Exception ex, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Pushing guard state version {Version} to silo {Silo} failed.")]
    private static partial void LogPushFailed(ILogger logger, Exception ex, long version, string silo);
}

[GenerateSerializer, Alias("cp.GuardStateRecord")]
public sealed class GuardStateRecord
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public List<KillSwitch> Switches { get; set; } = [];
    [Id(2)] public List<RevokedToken> Revoked { get; set; } = [];
    /// <summary>Legacy: history lived here before <see cref="GuardHistoryGrain"/>; read once, handed over, then left empty.</summary>
    [Id(3)] public List<KillSwitchEvent> History { get; set; } = [];
    [Id(4)] public List<ServerModeSetting> ServerModes { get; set; } = [];
    [Id(5)] public List<ToolClassificationOverride> ClassificationOverrides { get; set; } = [];
    [Id(6)] public List<SchemaOverride> SchemaOverrides { get; set; } = [];
    /// <summary>Legacy, as <see cref="History"/>.</summary>
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
