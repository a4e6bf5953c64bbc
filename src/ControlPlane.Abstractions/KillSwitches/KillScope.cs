namespace ControlPlane.KillSwitches;

/// <summary>The level a kill switch acts at, from the widest to the narrowest.</summary>
public enum KillScope
{
    Global,
    Server,
    Tool,
    Tenant,
    Agent,
    User,
    Session,
}

public static class KillScopes
{
    private static readonly Dictionary<string, KillScope> ByName = new(StringComparer.Ordinal)
    {
        ["global"] = KillScope.Global,
        ["server"] = KillScope.Server,
        ["tool"] = KillScope.Tool,
        ["tenant"] = KillScope.Tenant,
        ["agent"] = KillScope.Agent,
        ["user"] = KillScope.User,
        ["session"] = KillScope.Session,
    };

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static bool TryParse(string? name, out KillScope scope) => ByName.TryGetValue(name ?? "", out scope);

    public static string ToWireName(this KillScope scope) => scope switch
    {
        KillScope.Global => "global",
        KillScope.Server => "server",
        KillScope.Tool => "tool",
        KillScope.Tenant => "tenant",
        KillScope.Agent => "agent",
        KillScope.User => "user",
        KillScope.Session => "session",
        _ => throw new ArgumentOutOfRangeException(nameof(scope)),
    };
}
