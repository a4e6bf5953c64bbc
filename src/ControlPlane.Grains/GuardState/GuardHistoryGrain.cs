using ControlPlane.Availability;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Policy;

namespace ControlPlane.Grains.GuardState;

/// <summary>
/// Keeps the last <see cref="GuardStateLimits.HistoryKept"/> flips and policy changes in a record of its own, so the
/// guard state record that every flip rewrites and every silo's snapshot comes from holds only what is in force. A
/// separate grain rather than a second state of the owner: the owner's activation (which gates every silo's guard)
/// does not read the history, and a history store hiccup cannot fail a flip that is already in force.
/// </summary>
public sealed class GuardHistoryGrain(
    [PersistentState("guard-history", StorageNames.ControlPlane)] IPersistentState<GuardHistoryRecord> state) : Grain, IGuardHistoryGrain
{
    public async Task AppendAsync(KillSwitchEvent[] flips, PolicyEvent[] policy)
    {
        var next = new GuardHistoryRecord
        {
            Flips = Merge(state.State.Flips, flips),
            Policy = Merge(state.State.Policy, policy),
        };
        if (next.Flips.Count == state.State.Flips.Count && next.Policy.Count == state.State.Policy.Count
            && next.Flips.SequenceEqual(state.State.Flips) && next.Policy.SequenceEqual(state.State.Policy)) return;

        // Changed on a copy, kept only once written: a refused write leaves the history as the store has it.
        var previous = state.State;
        state.State = next;
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception ex)
        {
            state.State = previous;
            throw StoreUnavailableException.GrainStore("The guard-state history", ex);
        }
    }

    public Task<KillSwitchEvent[]> GetFlipsAsync(int limit) =>
        Task.FromResult(state.State.Flips.AsEnumerable().Reverse().Take(Math.Clamp(limit, 1, GuardStateLimits.HistoryKept)).ToArray());

    public Task<PolicyEvent[]> GetPolicyAsync(int limit) =>
        Task.FromResult(state.State.Policy.AsEnumerable().Reverse().Take(Math.Clamp(limit, 1, GuardStateLimits.HistoryKept)).ToArray());

    private static List<T> Merge<T>(List<T> held, T[] added)
    {
        var merged = new List<T>(held);
        foreach (var e in added)
        {
            // A retried append (the first landed but its answer was lost) repeats recent events: skip what is held.
            if (!merged.Contains(e)) merged.Add(e);
        }

        if (merged.Count > GuardStateLimits.HistoryKept) merged.RemoveRange(0, merged.Count - GuardStateLimits.HistoryKept);
        return merged;
    }
}
