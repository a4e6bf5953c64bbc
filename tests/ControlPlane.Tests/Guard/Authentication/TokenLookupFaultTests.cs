using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ControlPlane.Grains;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Guard.Authentication;

/// <summary>
/// A valid token whose record cannot be read right now (its store is down, as when its silo died or the database
/// blinked) is a retryable 503 with Retry-After and GUARD_UNAVAILABLE: a 401 would tell the agent its credentials are
/// bad. Once the store answers, the same request is served.
/// </summary>
public sealed class TokenLookupFaultTests
{
    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}""";

    [Fact]
    public async Task A_token_that_cannot_be_checked_is_a_503_to_retry_never_a_401_and_works_once_the_store_is_back()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "cp-token-fault-" + Guid.NewGuid().ToString("N")[..12]);
        string token;
        await using (var first = await ControlPlaneTestHost.StartAsync(dataDir))
        {
            (token, _) = await first.MintAsync("demo", "fault-agent", scopes: ["server:support-desk:read"]);
        }

        // A fresh silo has the token only in its store, and the store is down for token records.
        var faults = new StorageFaults();
        faults.StateNames.Add("token");
        await using var host = await ControlPlaneTestHost.StartAsync(dataDir: dataDir, decorateServices: s => s.AddStorageFaults(StorageNames.ControlPlane, faults));
        faults.Down = true;
        using var http = host.Http(token);

        var refused = await PostInitializeAsync(http);
        var body = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"Expected 503, got {(int)refused.StatusCode}: {body}");
        Assert.NotNull(refused.Headers.RetryAfter);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(RefusalCodes.GuardUnavailable, problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("retry_after").GetInt32() > 0);
        Assert.True(faults.Failed > 0, "The token's record should have been looked up in the failing store.");

        // A made-up token is still a plain 401 while the store is down: the fault says nothing about bad tokens.
        using var stranger = host.Http("garbage");
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostInitializeAsync(stranger)).StatusCode);

        faults.Down = false;
        var served = await PostInitializeAsync(http);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Directory.Delete(dataDir, recursive: true);
    }

    private static Task<HttpResponseMessage> PostInitializeAsync(HttpClient http)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(Initialize, Encoding.UTF8, "application/json") };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return http.SendAsync(request);
    }
}
