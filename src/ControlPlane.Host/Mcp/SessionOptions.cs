namespace ControlPlane.Host.Mcp;

/// <summary>
/// How long an MCP session keeps live state on its silo (<c>ControlPlane:Sessions</c>). A session with no request in
/// flight and no open GET stream is parked after <see cref="ParkAfter"/>: its live state is dropped and its next
/// request, on any silo, resumes it from the session's grain. The client sees nothing of it.
/// </summary>
public sealed class SessionOptions
{
    /// <summary>Idle time after which a session's live state is dropped (it stays resumable).</summary>
    public TimeSpan ParkAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Idle sessions held live at most per silo; beyond it the longest idle are parked at once.</summary>
    public int MaxIdleLive { get; set; } = 10_000;

    /// <summary>
    /// How long a session's record is kept after it was last written (opened, closed, or resumed; resumes write at most
    /// hourly). Past it the session can no longer be resumed elsewhere and its client opens a new one. Zero keeps
    /// records forever.
    /// </summary>
    public TimeSpan RecordRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often expired session records are deleted.</summary>
    public TimeSpan RecordSweepInterval { get; set; } = TimeSpan.FromHours(1);

    internal IEnumerable<string> Validate(string section)
    {
        if (RecordRetention < TimeSpan.Zero) yield return $"{section}:RecordRetention must not be negative (zero keeps session records forever).";
        else if (RecordRetention > TimeSpan.Zero && RecordRetention < ParkAfter) yield return $"{section}:RecordRetention must be at least ParkAfter ({ParkAfter}), or parked sessions could not be resumed.";
        // Orleans reminders fire at most once a minute.
        if (RecordSweepInterval < TimeSpan.FromMinutes(1)) yield return $"{section}:RecordSweepInterval must be at least 00:01:00.";
        if (ParkAfter < TimeSpan.FromSeconds(1) || ParkAfter > TimeSpan.FromDays(1)) yield return $"{section}:ParkAfter must be between 00:00:01 and 1.00:00:00.";
        if (MaxIdleLive < 0) yield return $"{section}:MaxIdleLive must not be negative.";
    }
}
