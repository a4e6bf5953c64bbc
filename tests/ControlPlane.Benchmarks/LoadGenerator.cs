using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using ModelContextProtocol.Client;

namespace ControlPlane.Benchmarks;

/// <summary>What one fixed-concurrency run measured.</summary>
internal sealed record LoadResult(Figures Figures, double Rate, int Errors);

/// <summary>
/// Real MCP over Streamable HTTP: one SDK client (one stateful session) per concurrent caller, each calling in a
/// closed loop for the duration; latencies in an HdrHistogram (microseconds).
/// </summary>
internal static class LoadGenerator
{
    public const string ReadTool = "lookup_customer_by_email";

    public static readonly Dictionary<string, object?> ReadArguments = new() { ["email"] = "ada@example.com" };

    public static async Task<LoadResult> RunAsync(Func<Task<McpClient>> connect, int concurrency, TimeSpan duration)
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => connect()));
        try
        {
            // One call each first: session registration, JIT and connection set-up are not the steady state.
            foreach (var client in clients) await client.CallToolAsync(ReadTool, ReadArguments);

            var histogram = Figures.NewHistogram();
            var errors = 0;
            var deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(clients.Select(async client =>
            {
                var local = Figures.NewHistogram();
                while (Stopwatch.GetTimestamp() < deadline)
                {
                    var t = Stopwatch.GetTimestamp();
                    var result = await client.CallToolAsync(ReadTool, ReadArguments);
                    local.RecordValue(Micros(t));
                    if (result.IsError is true) Interlocked.Increment(ref errors);
                }

                lock (histogram) histogram.Add(local);
            }));
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var figures = Figures.From(histogram);
            return new LoadResult(figures, figures.Count / seconds, errors);
        }
        finally
        {
            foreach (var client in clients) await client.DisposeAsync();
        }
    }

    public static long Micros(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds;
}

/// <summary>
/// Opens MCP sessions with plain HTTP requests (initialize, initialized, tools/list) and keeps nothing of them
/// on the client side, so that what stays in memory afterwards is the server's per-session state.
/// </summary>
internal sealed class SessionOpener(Uri endpoint, string? bearer) : IDisposable
{
    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"cp-bench","version":"1.0"}}}""";
    private const string Initialized = """{"jsonrpc":"2.0","method":"notifications/initialized"}""";
    private const string ListTools = """{"jsonrpc":"2.0","id":2,"method":"tools/list"}""";

    private readonly HttpClient _http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 16 });
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _opened = new();

    /// <summary>The ids of the sessions opened so far.</summary>
    public IReadOnlyCollection<string> SessionIds => _opened;

    /// <summary>Times one tools/list on each of <paramref name="sessionIds"/>, one after another (microseconds in the histogram).</summary>
    public async Task<Figures> TimeListAsync(IEnumerable<string> sessionIds)
    {
        var histogram = Figures.NewHistogram();
        foreach (var sessionId in sessionIds)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using (await SendAsync(ListTools, sessionId)) { }
            histogram.RecordValue((long)System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        return Figures.From(histogram);
    }

    public async Task OpenAsync(int sessions, int parallel = 8)
    {
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(async _ =>
        {
            while (Interlocked.Increment(ref next) <= sessions) await OpenOneAsync();
        }));
    }

    private async Task OpenOneAsync()
    {
        using var init = await SendAsync(Initialize, null);
        var sessionId = init.Headers.TryGetValues("Mcp-Session-Id", out var values) ? values.First() : throw new InvalidOperationException("No Mcp-Session-Id in the initialize response.");
        using (await SendAsync(Initialized, sessionId)) { }
        using (await SendAsync(ListTools, sessionId)) { }
        _opened.Enqueue(sessionId);
    }

    private async Task<HttpResponseMessage> SendAsync(string body, string? sessionId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (sessionId is not null)
        {
            request.Headers.Add("Mcp-Session-Id", sessionId);
            request.Headers.Add("MCP-Protocol-Version", "2025-06-18");
        }

        var response = await _http.SendAsync(request);
        await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"Opening a session failed: {(int)response.StatusCode}.");
        return response;
    }

    public void Dispose() => _http.Dispose();
}
