using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.EndToEnd;

internal static class RefusalAssert
{
    /// <summary>Asserts the contract's refusal shape: isError, structuredContent with the code, the same JSON as the first text block.</summary>
    public static JsonElement Refused(CallToolResult result, string code)
    {
        Assert.True(result.IsError, "Expected a refusal, got success: " + Text(result));
        Assert.NotNull(result.StructuredContent);
        var refusal = result.StructuredContent!.Value;
        Assert.Equal(code, refusal.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(refusal.GetProperty("message").GetString()));
        var text = Assert.IsType<TextContentBlock>(result.Content[0]).Text;
        Assert.Equal(code, JsonDocument.Parse(text).RootElement.GetProperty("code").GetString());
        return refusal;
    }

    public static void Succeeded(CallToolResult result) =>
        Assert.True(result.IsError is not true, "Expected success, got: " + Text(result));

    public static string Text(CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(b => b.Text));
}
