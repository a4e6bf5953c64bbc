using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;

namespace ControlPlane.Guard.Schemas;

/// <summary>One way arguments break a schema: where (a JSON pointer into the arguments) and what to fix.</summary>
public sealed record Violation(string Pointer, string Message);

/// <summary>
/// A compiled JSON Schema for tool arguments, evaluated with JsonSchema.Net. Tool schemas are closed by
/// default: where a schema does not say otherwise, fields it does not name are refused.
/// </summary>
public sealed class ArgumentSchema
{
    // Valid arguments are the common case: a yes/no evaluation that stops at the first failure and builds no
    // result tree. Only arguments that fail are evaluated again, with the list output that names each problem.
    private static readonly EvaluationOptions Verdict = new() { OutputFormat = OutputFormat.Flag };
    private static readonly EvaluationOptions Evaluation = new() { OutputFormat = OutputFormat.List };

    /// <summary>
    /// How long one validation may take. Arguments are small and linear-time patterns match them in microseconds; a
    /// validation that runs out is refused (INVALID_ARGUMENTS) rather than let hold a thread other calls need. The
    /// budget is wall-clock time, which also counts a thread not scheduled or paused by a collection, so it is a
    /// backstop far above any real validation (a quarter second is within reach of a loaded machine's stalls); each
    /// match is bounded on its own by <see cref="SchemaRegex.MatchTimeout"/> and the linear engine anyway.
    /// </summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(1);

    private readonly JsonSchema _schema;

    private ArgumentSchema(JsonSchema schema) => _schema = schema;

    /// <summary>Compiles a tool's declared input schema, closing it to unknown fields unless it says otherwise.</summary>
    public static ArgumentSchema ForTool(JsonElement inputSchema)
    {
        var node = JsonNode.Parse(inputSchema.GetRawText()) as JsonObject ?? new JsonObject { ["type"] = "object" };
        if (!node.ContainsKey("additionalProperties") && !node.ContainsKey("unevaluatedProperties")) node["additionalProperties"] = false;
        return Compile(JsonSerializer.SerializeToElement(node), BoundedDialects.ForTools);
    }

    /// <summary>
    /// Compiles a stored operator schema. Its regular expressions are read as JSON Schema says, with ECMA-262
    /// meaning: there <c>$</c> is the end of input, while .NET's <c>$</c> also matches before a final newline, which
    /// would let an id with a trailing newline through a pattern ending in <c>$</c>. Every regex has a bounded cost
    /// (<see cref="SchemaRegex"/>); one stored before that rule, which needs backtracking, runs under a match timeout.
    /// Throws <see cref="JsonSchemaException"/> or <see cref="JsonException"/> if it is not a schema.
    /// </summary>
    public static ArgumentSchema Compile(JsonElement schema) => Compile(schema, BoundedDialects.ForTools);

    private static ArgumentSchema Compile(JsonElement schema, BoundedDialects dialects) =>
        // The bounded keywords give patterns their ECMA-262 meaning themselves (SchemaRegex); the source stays as written.
        new(JsonSchema.Build(schema, dialects.Options()));

    /// <summary>Checks that a text is a JSON Schema object this validator can compile; returns the problem, or null.</summary>
    public static string? Check(string schemaJson)
    {
        try
        {
            using var document = JsonDocument.Parse(schemaJson);
            if (document.RootElement.ValueKind != JsonValueKind.Object) return "A schema must be a JSON object.";
            // An operator's schema is held to linear-time patterns: refused here, with the pattern named, if it needs backtracking.
            Compile(document.RootElement.Clone(), BoundedDialects.ForOverrides);
            return null;
        }
        catch (Exception ex) when (ex is JsonException or JsonSchemaException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            return "Not a valid JSON Schema: " + ex.Message;
        }
    }

    /// <summary>
    /// Every violation, by pointer, or an empty list when the arguments are valid. Runs within <see cref="Budget"/>
    /// (and within any budget the caller started): running out is a violation, so the call is refused, not stalled.
    /// </summary>
    public IReadOnlyList<Violation> Validate(JsonElement arguments)
    {
        using var budget = SchemaBudget.Start(Budget);
        try
        {
            if (_schema.Evaluate(arguments, Verdict).IsValid) return [];

            var results = _schema.Evaluate(arguments, Evaluation);
            if (results.IsValid) return [];

            var violations = new List<Violation>();
            Collect(results, violations);
            if (violations.Count == 0) violations.Add(new Violation("", "The arguments do not match the tool's schema."));
            return violations;
        }
        catch (SchemaBudgetExceededException ex)
        {
            return [new Violation(ex.Pointer, "Checking this value against the schema took too long (a pattern that this input makes slow to match), " +
                "so the call is refused. Send a shorter or plainer value, or tell the operators.")];
        }
    }

    private static void Collect(EvaluationResults results, List<Violation> into)
    {
        if (!results.IsValid && results.Errors is { Count: > 0 } errors)
        {
            var pointer = results.InstanceLocation.ToString();
            foreach (var (keyword, message) in errors)
            {
                into.Add(new Violation(pointer, Describe(keyword, message, pointer)));
            }
        }
        else if (!results.IsValid && results.Details is null or { Count: 0 } && results.EvaluationPath.ToString().EndsWith("/additionalProperties", StringComparison.Ordinal))
        {
            into.Add(new Violation(results.InstanceLocation.ToString(), "This field is not allowed; remove it."));
        }

        if (results.Details is null) return;
        foreach (var detail in results.Details) Collect(detail, into);
    }

    private static string Describe(string keyword, string message, string pointer) => keyword switch
    {
        "false" or "additionalProperties" or "unevaluatedProperties" => $"'{LastSegment(pointer)}' is not an allowed field; remove it.",
        _ => message,
    };

    private static string LastSegment(string pointer) => pointer.Length == 0 ? "(root)" : pointer[(pointer.LastIndexOf('/') + 1)..];
}
