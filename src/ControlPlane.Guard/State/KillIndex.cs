using System.Collections.Frozen;
using ControlPlane.KillSwitches;

namespace ControlPlane.Guard.State;

/// <summary>
/// Active kill switches indexed by target key, so a call checks all seven levels with a handful of
/// dictionary reads. Immutable; a new index replaces the old one atomically.
/// </summary>
public sealed class KillIndex
{
    private readonly FrozenDictionary<string, KillSwitch> _byKey;

    public KillIndex(IEnumerable<KillSwitch> switches)
    {
        _byKey = switches.ToFrozenDictionary(s => s.Target.Key, StringComparer.Ordinal);
    }

    public static KillIndex Empty { get; } = new([]);

    public int Count => _byKey.Count;

    public bool Contains(string key) => _byKey.ContainsKey(key);

    /// <summary>The widest switch that covers the call, or null. Checks widest first so the reported scope is the one to clear.</summary>
    public KillSwitch? Match(in CallIdentity call)
    {
        if (_byKey.Count == 0) return null;

        return Find("global")
            ?? Find($"server|{call.ServerId}")
            ?? Find($"server|{call.ServerId}|{call.TenantId}")
            ?? Find($"tool|{call.ServerId}|{call.ToolName}")
            ?? Find($"tool|{call.ServerId}|{call.ToolName}|{call.TenantId}")
            ?? Find($"tenant|{call.TenantId}")
            ?? Find($"agent|{call.TenantId}|{call.AgentId}")
            ?? (call.UserId is null ? null : Find($"user|{call.TenantId}|{call.UserId}"))
            ?? (call.SessionId is null ? null : Find($"session|{call.SessionId}"));
    }

    private KillSwitch? Find(string key) => _byKey.GetValueOrDefault(key);
}
