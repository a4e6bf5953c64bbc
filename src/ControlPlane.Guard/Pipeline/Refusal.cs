using System.Buffers;
using System.Text;
using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Pipeline;

/// <summary>
/// Why the guard refused a call. Rendered as a normal tool result with isError=true whose first text block is the
/// refusal's JSON. structuredContent carries the same object only for a tool that advertises no outputSchema:
/// official clients (the TypeScript SDK, the MCP Inspector) validate structuredContent against the advertised
/// schema even on errors, and would throw instead of showing the refusal.
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

    /// <param name="structured">False for a tool that advertises an outputSchema: the JSON then travels as text only.</param>
    public CallToolResult ToCallToolResult(bool structured = true)
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

        return new CallToolResult
        {
            IsError = true,
            StructuredContent = structured ? JsonElement.Parse(buffer.WrittenSpan) : null,
            Content = [new TextContentBlock { Text = Encoding.UTF8.GetString(buffer.WrittenSpan) }],
        };
    }

    /// <summary>
    /// The refusal of a request whose result cannot carry isError (resources/read, prompts/get, ...): a JSON-RPC error
    /// whose message starts with the code and whose data is the refusal's JSON object.
    /// </summary>
    public McpProtocolException ToProtocolException()
    {
        var exception = new McpProtocolException($"{Code}: {Message}", McpErrorCode.InvalidRequest);
        exception.Data["code"] = Code;
        exception.Data["message"] = Message;
        if (Scope is not null) exception.Data["scope"] = Scope;
        if (Reason is not null) exception.Data["reason"] = Reason;
        if (RetryAfterSeconds is { } retry) exception.Data["retry_after"] = retry;
        if (Extra is not null)
        {
            foreach (var (name, value) in Extra) exception.Data[name] = value;
        }

        return exception;
    }

    /// <summary>
    /// The refusal object a result carries (its first text block, as every client reads it), or null when the result
    /// is not a refusal of the guard's.
    /// </summary>
    public static JsonElement? Read(CallToolResult result)
    {
        if (result.IsError is not true || result.Content is not [TextContentBlock { Text: { } text }, ..]) return null;
        try
        {
            var json = JsonElement.Parse(text);
            return json.ValueKind == JsonValueKind.Object && json.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String ? json : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public override string ToString() => $"{Code}: {Message}";
}
