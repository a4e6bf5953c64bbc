using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Guard.Schemas;

/// <summary>
/// Finds property names that occur twice in one JSON object. A parser keeps one of them (System.Text.Json and the
/// MCP SDK the last), another parser may keep the other: a validator and a tool could see different values, so the
/// guard refuses such input instead of picking one.
/// </summary>
public static class DuplicateKeys
{
    /// <summary>
    /// Looks at a node as the client sent it: a node parsed from a request and not modified writes its original
    /// properties, repeated names included.
    /// </summary>
    public static IReadOnlyList<string> Find(JsonNode node)
    {
        // Every tool call passes through here: the text is written into a per-thread buffer, not a new one per call.
        // The scan below is synchronous, so the buffer is free again before this thread writes the next call's params.
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        writer.Reset(buffer);
        try
        {
            node.WriteTo(writer);
            writer.Flush();
        }
        catch (ArgumentException)
        {
            // An object the SDK already expanded refuses repeated names itself ("An item with the same key has already
            // been added"): a repeat somewhere in the node, position unknown.
            return [""];
        }

        var found = Find(buffer.WrittenSpan);
        if (buffer.Capacity > MaxRetainedBuffer) t_buffer = null;
        return found;
    }

    private const int MaxRetainedBuffer = 1 << 20;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>JSON pointers of the second (third...) occurrence of each repeated name; empty when there is none or the JSON is malformed.</summary>
    public static IReadOnlyList<string> Find(ReadOnlySpan<byte> json, int max = 16)
    {
        List<string>? found = null;
        var frames = new Stack<Frame>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 256, CommentHandling = JsonCommentHandling.Skip });
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                        var pointer = frames.Count == 0 ? "" : frames.Peek().ChildPointer();
                        frames.Push(new Frame(reader.TokenType == JsonTokenType.StartArray, pointer));
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        frames.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var frame = frames.Peek();
                        var name = reader.GetString()!;
                        if (!frame.Names!.Add(name))
                        {
                            (found ??= []).Add(frame.Pointer + "/" + Escape(name));
                            if (found.Count >= max) return found;
                        }

                        frame.Property = name;
                        break;
                    default:
                        if (frames.Count > 0 && frames.Peek().IsArray) frames.Peek().NextIndex++;
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Malformed JSON is the parser's to reject; this only looks for ambiguity in well-formed input.
            return [];
        }

        return found ?? (IReadOnlyList<string>)[];
    }

    private static string Escape(string name) => name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);

    private sealed class Frame(bool isArray, string pointer)
    {
        public bool IsArray { get; } = isArray;

        public string Pointer { get; } = pointer;

        public HashSet<string>? Names { get; } = isArray ? null : new HashSet<string>(StringComparer.Ordinal);

        public string? Property { get; set; }

        public int NextIndex { get; set; }

        public string ChildPointer() => IsArray ? $"{Pointer}/{NextIndex++}" : $"{Pointer}/{Escape(Property!)}";
    }
}
