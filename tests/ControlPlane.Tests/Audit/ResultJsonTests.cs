using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Guard.Auditing;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Audit;

/// <summary>
/// The audit's result hash is of the bytes the agent received. The direct writer for common results must produce
/// exactly the SDK serializer's bytes, and every other shape must still go through the serializer.
/// </summary>
public sealed class ResultJsonTests
{
    public static TheoryData<string> Shapes() => [.. Results.Keys];

    private static readonly Dictionary<string, Func<CallToolResult>> Results = new()
    {
        ["empty"] = () => new CallToolResult(),
        ["one text"] = () => Text("hello"),
        ["escaping"] = () => Text("<script>&'\"\\ \u0001\t\n é 日本 😀 \u2028 +"),
        ["several texts, error"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "a" }, new TextContentBlock { Text = "" }], IsError = true },
        ["not an error"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "ok" }], IsError = false },
        ["structured"] = () => new CallToolResult
        {
            Content = [new TextContentBlock { Text = """{"id":"c1","name":"Ada <ada@example.com>"}""" }],
            StructuredContent = JsonDocument.Parse("""{ "id": "c1", "n": [1, 2.50, -0, 1e3], "s": "<é😀>", "nested": { "t": true, "f": null } }""").RootElement.Clone(),
        },
        ["structured, error"] = () => new CallToolResult { StructuredContent = JsonDocument.Parse("""{"error":"x"}""").RootElement.Clone(), IsError = true },
        ["structured array"] = () => new CallToolResult { StructuredContent = JsonDocument.Parse("[1,\"two\"]").RootElement.Clone() },
        ["meta (serializer)"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "m" }], Meta = new JsonObject { ["trace"] = "t1" } },
        ["annotations (serializer)"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "a", Annotations = new Annotations { Priority = 0.5f } }] },
        ["block meta (serializer)"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "a", Meta = new JsonObject { ["k"] = 1 } }] },
        ["image (serializer)"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "see" }, ImageContentBlock.FromBytes(new byte[] { 1, 2, 3 }, "image/png")] },
        ["result type (serializer)"] = () => new CallToolResult { Content = [new TextContentBlock { Text = "r" }], ResultType = "complete" },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Writes_exactly_the_bytes_the_sdk_sends(string shape)
    {
        var result = Results[shape]();
        var expected = JsonSerializer.SerializeToUtf8Bytes(result, McpJsonUtilities.DefaultOptions);

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, ResultJson.WriterOptions))
        {
            ResultJson.Write(writer, result);
        }

        Assert.Equal(System.Text.Encoding.UTF8.GetString(expected), System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan));
        Assert.True(expected.AsSpan().SequenceEqual(buffer.WrittenSpan));
    }

    private static CallToolResult Text(string text) => new() { Content = [new TextContentBlock { Text = text }] };
}
