namespace ControlPlane.Drills;

/// <summary>The kill-switch level a drill exercises. Each level is drilled on a synthetic target that no real traffic uses.</summary>
public enum DrillLevel
{
    Session,
    User,
    Agent,
    Tenant,
    Tool,
    Server,

    /// <summary>
    /// A real global switch stops every tenant while it is set, so it is never drilled on a schedule; an
    /// operator runs it by hand, saying so explicitly, in a maintenance window.
    /// </summary>
    Global,
}

public static class DrillLevels
{
    private static readonly Dictionary<string, DrillLevel> ByName = new(StringComparer.Ordinal)
    {
        ["session"] = DrillLevel.Session,
        ["user"] = DrillLevel.User,
        ["agent"] = DrillLevel.Agent,
        ["tenant"] = DrillLevel.Tenant,
        ["tool"] = DrillLevel.Tool,
        ["server"] = DrillLevel.Server,
        ["global"] = DrillLevel.Global,
    };

    public static IReadOnlyList<DrillLevel> All { get; } = [.. Enum.GetValues<DrillLevel>()];

    /// <summary>The levels the scheduler drills by itself: every one whose switch touches only synthetic targets.</summary>
    public static IReadOnlyList<DrillLevel> Scheduled { get; } = [.. All.Where(l => l != DrillLevel.Global)];

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryParse(string? name, out DrillLevel level) => ByName.TryGetValue(name ?? "", out level);

    public static string ToWireName(this DrillLevel level) => level.ToString().ToLowerInvariant();
}

/// <summary>What one drill did: whether the switch stopped a real guarded call and calls resumed after it was cleared.</summary>
[GenerateSerializer, Immutable, Alias("cp.DrillResult")]
public sealed record DrillResult(
    [property: Id(0)] string Id,
    [property: Id(1)] DrillLevel Level,
    [property: Id(2)] bool Passed,
    [property: Id(3)] DateTimeOffset StartedAt,
    [property: Id(4)] DateTimeOffset FinishedAt,
    [property: Id(5)] string RanBy,
    [property: Id(6)] string[] Steps,
    [property: Id(7)] string? Failure,
    [property: Id(8)] string? SwitchLeftBehind = null);

/// <summary>Runs one drill on this silo. Implemented by the host (it needs the MCP endpoint); called by the scheduler grain.</summary>
public interface IKillSwitchDrillRunner
{
    /// <summary>Never throws for a failed drill: the failure is in the result, and in the audit.</summary>
    Task<DrillResult> ExecuteAsync(DrillLevel level, string ranBy, CancellationToken cancellationToken);
}

/// <summary>
/// Runs drills one at a time across the cluster (one activation), keeps the last result per level, and drills
/// every scheduled level when its reminder fires.
/// </summary>
[Alias("cp.IDrillSchedulerGrain")]
public interface IDrillSchedulerGrain : IGrainWithIntegerKey
{
    public const long Singleton = 0;

    /// <summary>Registers (or updates) the reminder; the first tick comes when the oldest scheduled level is due.</summary>
    [Alias("EnsureScheduled")]
    Task EnsureScheduledAsync(TimeSpan interval, TimeSpan firstRunDelay);

    /// <summary>Removes the reminder (drills switched off by configuration).</summary>
    [Alias("Unschedule")]
    Task UnscheduleAsync();

    [Alias("Run")]
    Task<DrillResult> RunAsync(DrillLevel level, string ranBy);

    /// <summary>The last result per level, and the last passing one where it differs.</summary>
    [Alias("GetLast"), AlwaysInterleave]
    Task<DrillRecord[]> GetLastResultsAsync();
}

/// <summary>The latest drill of a level, and the latest that passed (null if none has).</summary>
[GenerateSerializer, Immutable, Alias("cp.DrillRecord")]
public sealed record DrillRecord(
    [property: Id(0)] DrillLevel Level,
    [property: Id(1)] DrillResult? Last,
    [property: Id(2)] DrillResult? LastPassed);
