using Json.Schema;

namespace ControlPlane.Guard.Schemas;

/// <summary>
/// Every dialect a schema may name (by <c>$schema</c>, or none), with <c>pattern</c> and <c>patternProperties</c>
/// replaced by their bounded versions. Registered under the dialects' own ids in a registry of ours, which the
/// library consults before its global one, so no schema can reach the library's own regex construction.
/// </summary>
internal sealed class BoundedDialects
{
    /// <summary>For an upstream tool's own schema: a pattern that needs backtracking runs under the match timeout.</summary>
    public static BoundedDialects ForTools { get; } = new(allowBacktracking: true);

    /// <summary>For an operator's schema override: every pattern must run in linear time.</summary>
    public static BoundedDialects ForOverrides { get; } = new(allowBacktracking: false);

    private BoundedDialects(bool allowBacktracking)
    {
        IKeywordHandler[] bounded = [new BoundedPatternKeyword(allowBacktracking), new BoundedPatternPropertiesKeyword()];
        Registry = new DialectRegistry();
        foreach (var dialect in new[] { Dialect.Draft06, Dialect.Draft07, Dialect.Draft201909, Dialect.Draft202012, Dialect.V1_2026, Dialect.V1 })
        {
            // With() does not carry the id over by itself; a dialect without one cannot be named by $schema anyway.
            if (dialect.Id is { } id) Registry.Register(dialect.With(bounded, id));
        }

        Default = Dialect.Default.Id is { } defaultId ? Dialect.Default.With(bounded, defaultId) : Dialect.Default.With(bounded);
    }

    public DialectRegistry Registry { get; }

    public Dialect Default { get; }

    /// <summary>Build options for one schema: its own schema registry (ids in one schema never meet another's), our dialects.</summary>
    public BuildOptions Options() => new() { SchemaRegistry = new SchemaRegistry(), DialectRegistry = Registry, Dialect = Default };
}
