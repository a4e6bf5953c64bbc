using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.EndToEnd;

internal static class RefusalAssert
{
    /// <summary>
    /// Asserts the contract's refusal shape: isError, the refusal's JSON as the first text block, and structuredContent
    /// either absent (a tool with an outputSchema, whose schema a refusal would break) or the same JSON.
    /// </summary>
    public static JsonElement Refused(CallToolResult result, string code)
    {
        Assert.True(result.IsError, "Expected a refusal, got success: " + Text(result));
        var text = Assert.IsType<TextContentBlock>(result.Content[0]).Text;
        var refusal = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal(code, refusal.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(refusal.GetProperty("message").GetString()));
        if (result.StructuredContent is { } structured) Assert.Equal(refusal.GetRawText(), structured.GetRawText());
        return refusal;
    }

    public static void Succeeded(CallToolResult result) =>
        Assert.True(result.IsError is not true, "Expected success, got: " + Text(result));

    public static string Text(CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(b => b.Text));
}
