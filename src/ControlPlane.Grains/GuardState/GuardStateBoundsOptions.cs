namespace ControlPlane.Grains.GuardState;

/// <summary>The size bound on the guard state record. Bound from <c>ControlPlane:GuardState</c>.</summary>
public sealed class GuardStateBoundsOptions
{
    public const string SectionName = "ControlPlane:GuardState";

    /// <summary>
    /// The most serialized bytes a change may take the record to. Each entry and each tenant's number of entries are
    /// bounded on their own (<see cref="ControlPlane.GuardState.GuardStateLimits"/>); this bounds the sum, which would
    /// otherwise grow with the number of tenants. A protective change (a kill switch, a revocation) may use
    /// <see cref="ProtectiveReserve"/> beyond it, so an emergency is never refused because policy filled the record.
    /// </summary>
    public int MaxRecordBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>The share of <see cref="MaxRecordBytes"/> kept for protective changes only.</summary>
    public const double ProtectiveReserve = 0.25;

    /// <summary>The hard bound: no change at all takes the record past this.</summary>
    public int HardLimitBytes => (int)Math.Min(int.MaxValue, MaxRecordBytes * (1 + ProtectiveReserve));

    public IEnumerable<string> Validate()
    {
        if (MaxRecordBytes is < 16 * 1024 or > 256 * 1024 * 1024)
        {
            yield return $"{SectionName}:MaxRecordBytes must be between 16384 (16 KiB) and 268435456 (256 MiB); it is {MaxRecordBytes}.";
        }
    }
}
