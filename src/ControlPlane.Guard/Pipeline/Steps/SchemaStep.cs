using System.Buffers;
using System.Text.Json;
using ControlPlane.Guard.Schemas;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// A tool's arguments must satisfy the tool's own schema (closed to unknown fields) and every operator
/// override for it, before anything downstream sees them. Every violation is reported by JSON pointer.
/// </summary>
public sealed class SchemaStep : IGuardStep
{
    /// <summary>The argument that carries a confirmation token; never part of a tool's own arguments.</summary>
    public const string ConfirmationArgument = GuardCallBuilder.ConfirmationArgument;

    public string Name => "schema";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        if (call.Tool is not { } tool) return ValueTask.FromResult<Refusal?>(null);
        if (tool.InputSchema is not { } own)
        {
            return Refuse([new Violation("", $"The input schema of '{tool.PublicName}' cannot be evaluated, so no call is let through. Tell the operators.")]);
        }

        if (call.DuplicateKeys.Count > 0)
        {
            // Checked before the schema: the parsed arguments hold only one of the values, so validating them proves nothing.
            return Refuse([.. call.DuplicateKeys.Select(pointer => pointer.StartsWith("/arguments/", StringComparison.Ordinal)
                ? new Violation(pointer["/arguments".Length..], "This key appears more than once in the arguments; send it once.")
                : new Violation("", pointer.Length == 0 ? "The request's params repeat a key; send each key once." : $"The request's params repeat the key at {pointer}; send each key once."))]);
        }

        using var document = Parse(call.Arguments);
        var arguments = document?.RootElement ?? EmptyObject;
        var found = own.Validate(arguments);
        List<Violation>? violations = found.Count == 0 ? null : [.. found];
        foreach (var tightening in call.State.Policy.SchemaOverrides(tool, call.Identity.TenantId))
        {
            if (tightening is null)
            {
                (violations ??= []).Add(new Violation("", "An operator schema for this tool cannot be evaluated, so no call is let through. Tell the operators."));
                continue;
            }

            foreach (var violation in tightening.Validate(arguments))
            {
                violations ??= [];
                if (!violations.Contains(violation)) violations.Add(violation);
            }
        }

        return violations is null ? ValueTask.FromResult<Refusal?>(null) : Refuse(violations);
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

    /// <summary>
    /// The arguments as one JSON object (the builder already took the confirmation token out); null when
    /// there are none. Written into a per-thread buffer that the document reads in place, so a call costs no
    /// copies: the document must be disposed before this thread writes the next call's arguments, which holds
    /// because validation is synchronous.
    /// </summary>
    private static JsonDocument? Parse(IDictionary<string, JsonElement>? arguments)
    {
        if (arguments is null || arguments.Count == 0) return null;

        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        writer.WriteStartObject();
        if (arguments is Dictionary<string, JsonElement> concrete)
        {
            foreach (var (name, value) in concrete) Write(writer, name, value);
        }
        else
        {
            foreach (var (name, value) in arguments) Write(writer, name, value);
        }

        writer.WriteEndObject();
        writer.Flush();
        return JsonDocument.Parse(buffer.WrittenMemory);

        static void Write(Utf8JsonWriter writer, string name, JsonElement value)
        {
            writer.WritePropertyName(name);
            value.WriteTo(writer);
        }
    }

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();
}
