using System.Buffers;
using System.Text;
using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Why the guard refused a call. Rendered as a normal tool result with isError=true, the JSON in
/// structuredContent and, for clients that only read text, the same JSON as the first text block.
/// </summary>
public sealed class Refusal
{
    public Refusal(string code, string message)
    {
        Code = code;
        Message = message;
    }

    public string Code { get; }
    public string Message { get; }
    public string? Scope { get; init; }
    public string? Reason { get; init; }
    public int? RetryAfterSeconds { get; init; }

    /// <summary>Extra code-specific fields, written as they are (already valid JSON values).</summary>
    public IReadOnlyDictionary<string, JsonElement>? Extra { get; init; }

    public CallToolResult ToCallToolResult()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("code", Code);
            writer.WriteString("message", Message);
            if (Scope is not null) writer.WriteString("scope", Scope);
            if (Reason is not null) writer.WriteString("reason", Reason);
            if (RetryAfterSeconds is { } retry) writer.WriteNumber("retry_after", retry);
            if (Extra is not null)
            {
                foreach (var (name, value) in Extra)
                {
                    writer.WritePropertyName(name);
                    value.WriteTo(writer);
                }
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return new CallToolResult
        {
            IsError = true,
            StructuredContent = document.RootElement.Clone(),
            Content = [new TextContentBlock { Text = Encoding.UTF8.GetString(buffer.WrittenSpan) }],
        };
    }

    public override string ToString() => $"{Code}: {Message}";
}
