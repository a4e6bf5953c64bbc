using ControlPlane.GuardState;
using ControlPlane.Policy;

namespace ControlPlane.Grains.GuardState;

/// <summary>What <see cref="GuardHistoryGrain"/> persists: the recent flips and policy changes, oldest first.</summary>
[GenerateSerializer, Alias("cp.GuardHistoryRecord")]
public sealed class GuardHistoryRecord
{
    [Id(0)] public List<KillSwitchEvent> Flips { get; set; } = [];
    [Id(1)] public List<PolicyEvent> Policy { get; set; } = [];
}
