using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>Opens an MCP session with hand-written requests, for tests that must send bytes the SDK client never would.</summary>
internal static class RawMcpSession
{
    /// <summary>Initializes a session on <c>/mcp</c> (initialize, then initialized) and returns its id.</summary>
    public static async Task<string> OpenAsync(HttpClient http, string clientName)
    {
        if (http.DefaultRequestHeaders.Accept.Count == 0)
        {
            http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        }

        var initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"CLIENT","version":"1"}}}"""
            .Replace("CLIENT", clientName, StringComparison.Ordinal);
        var init = await http.PostAsync("/mcp", new StringContent(initialize, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, init.StatusCode);
        var session = init.Headers.GetValues("Mcp-Session-Id").Single();
        using var initialized = new HttpRequestMessage(HttpMethod.Post, "/mcp")
        {
            Content = new StringContent("""{"jsonrpc":"2.0","method":"notifications/initialized"}""", Encoding.UTF8, "application/json"),
        };
        initialized.Headers.Add("Mcp-Session-Id", session);
        Assert.True((await http.SendAsync(initialized)).IsSuccessStatusCode);
        return session;
    }

    /// <summary>
    /// Posts one JSON-RPC message on the session and returns every message of its answer in wire order: a plain
    /// JSON body is one message, an SSE stream is each <c>data:</c> event (notifications first, then the response).
    /// </summary>
    public static async Task<IReadOnlyList<JsonElement>> ExchangeAsync(HttpClient http, string session, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("Mcp-Session-Id", session);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        if (text.TrimStart().StartsWith('{')) return [JsonDocument.Parse(text).RootElement.Clone()];
        return text.Split('\n')
            .Where(line => line.StartsWith("data:", StringComparison.Ordinal))
            .Select(line => JsonDocument.Parse(line["data:".Length..].Trim()).RootElement.Clone())
            .ToList();
    }
}
