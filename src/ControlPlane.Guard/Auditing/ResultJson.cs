using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Auditing;

/// <summary>
/// Writes a tool result exactly as the SDK writes it to the agent, so the audit's result hash is of what the agent
/// received. The common shape (text blocks, optional structured content, no metadata) is written directly: the
/// serializer's pass allocates its stack of frames on every call. Anything else goes through the serializer.
/// Tests hold the two byte for byte equal.
/// </summary>
internal static class ResultJson
{
    private static readonly JsonTypeInfo ResultType = McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult));

    /// <summary>The options the SDK's own writer uses (same escaping, indentation and depth).</summary>
    public static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = McpJsonUtilities.DefaultOptions.Encoder,
        Indented = McpJsonUtilities.DefaultOptions.WriteIndented,
        MaxDepth = McpJsonUtilities.DefaultOptions.MaxDepth,
    };

    public static void Write(Utf8JsonWriter writer, CallToolResult result)
    {
        if (!TryWriteCommonShape(writer, result)) JsonSerializer.Serialize(writer, result, ResultType);
    }

    /// <summary>Any guarded request's result: a tool's as above, the others (resources, prompts) through the serializer.</summary>
    public static void Write(Utf8JsonWriter writer, Result result)
    {
        if (result is CallToolResult tool) Write(writer, tool);
        else JsonSerializer.Serialize(writer, result, McpJsonUtilities.DefaultOptions.GetTypeInfo(result.GetType()));
    }

    private static bool TryWriteCommonShape(Utf8JsonWriter writer, CallToolResult result)
    {
        if (result.Meta is not null || result.ResultType is not null) return false;
        var content = result.Content;
        for (var i = 0; i < content.Count; i++)
        {
            if (content[i] is not TextContentBlock { Annotations: null, Meta: null }) return false;
        }

        writer.WriteStartObject();
        writer.WritePropertyName("content"u8);
        writer.WriteStartArray();
        for (var i = 0; i < content.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "text"u8);
            writer.WriteString("text"u8, ((TextContentBlock)content[i]).Text);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        if (result.StructuredContent is { } structured)
        {
            writer.WritePropertyName("structuredContent"u8);
            structured.WriteTo(writer);
        }

        if (result.IsError is { } isError) writer.WriteBoolean("isError"u8, isError);
        writer.WriteEndObject();
        return true;
    }
}
