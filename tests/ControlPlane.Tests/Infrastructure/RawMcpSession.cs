using System.Net;
using System.Net.Http.Headers;
using System.Text;

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
}
