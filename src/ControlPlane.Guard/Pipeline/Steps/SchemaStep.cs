using System.Text.Json;
using ControlPlane.Guard.Schemas;
using ControlPlane.Guard.State;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// Step 5: arguments must satisfy the tool's own schema (closed to unknown fields) and every operator
/// override for it, before anything downstream sees them. Every violation is reported by JSON pointer.
/// </summary>
public sealed class SchemaStep(GuardStateCache guardState) : IGuardStep
{
    /// <summary>The argument that carries a confirmation token; never part of a tool's own arguments.</summary>
    public const string ConfirmationArgument = "confirmation_token";

    public string Name => "schema";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var tool = call.Tool;
        if (tool.InputSchema is not { } own)
        {
            return Refuse([new Violation("", $"The input schema of '{tool.PublicName}' cannot be evaluated, so no call is let through. Tell the operators.")]);
        }

        var arguments = ToElement(call.Arguments);
        var violations = new List<Violation>(own.Validate(arguments));
        foreach (var tightening in guardState.Policy.SchemaOverrides(tool, call.Identity.TenantId))
        {
            if (tightening is null)
            {
                violations.Add(new Violation("", "An operator schema for this tool cannot be evaluated, so no call is let through. Tell the operators."));
                continue;
            }

            foreach (var violation in tightening.Validate(arguments))
            {
                if (!violations.Contains(violation)) violations.Add(violation);
            }
        }

        return violations.Count == 0 ? ValueTask.FromResult<Refusal?>(null) : Refuse(violations);
    }

    private static ValueTask<Refusal?> Refuse(IReadOnlyList<Violation> violations)
    {
        var list = JsonSerializer.SerializeToElement(
            violations.Select(v => new Dictionary<string, string> { ["pointer"] = v.Pointer, ["message"] = v.Message }));
        return ValueTask.FromResult<Refusal?>(new Refusal(
            RefusalCodes.InvalidArguments,
            $"The arguments break the tool's schema ({violations.Count} problem{(violations.Count == 1 ? "" : "s")}): " +
            string.Join("; ", violations.Take(5).Select(v => $"{(v.Pointer.Length == 0 ? "(arguments)" : v.Pointer)}: {v.Message}")) +
            ". Fix them and call again; do not guess values the user did not give.")
        {
            Extra = new Dictionary<string, JsonElement> { ["violations"] = list },
        });
    }

    /// <summary>The arguments as one JSON object, without the confirmation token the guard consumes itself.</summary>
    private static JsonElement ToElement(IDictionary<string, JsonElement>? arguments)
    {
        if (arguments is null || arguments.Count == 0) return EmptyObject;
        if (!arguments.ContainsKey(ConfirmationArgument)) return JsonSerializer.SerializeToElement(arguments);

        var without = new Dictionary<string, JsonElement>(arguments.Count, StringComparer.Ordinal);
        foreach (var (name, value) in arguments)
        {
            if (name != ConfirmationArgument) without[name] = value;
        }

        return JsonSerializer.SerializeToElement(without);
    }

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();
}
