using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using ModelContextProtocol;
using ModelContextProtocol.Client;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>Bad input gets a clear, structured error and changes nothing.</summary>
[Collection(EmbeddedHostCollection.Name)]
public sealed class BadInputTests(EmbeddedHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}""";

    [Fact]
    public async Task Unknown_tool_is_a_JSON_RPC_error()
    {
        await using var client = await Host.ConnectAsync();
        var error = await Assert.ThrowsAsync<McpProtocolException>(async () => await client.CallToolAsync("no_such_tool"));
        Assert.Equal(McpErrorCode.InvalidParams, error.ErrorCode);
        Assert.Contains("no_such_tool", error.Message);
    }

    [Fact]
    public async Task Malformed_JSON_RPC_gets_a_JSON_RPC_error_not_a_crash()
    {
        using var http = McpHttp(Host.Credentials.AgentToken);
        var response = await http.PostAsync("/mcp", Json("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"error\"", body);

        // The host is still serving.
        await using var client = await Host.ConnectAsync();
        Assert.NotEmpty(await client.ListToolsAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    public async Task A_body_that_does_not_say_it_is_JSON_is_a_415_JSON_RPC_error_not_a_500(string? contentType)
    {
        using var http = McpHttp(Host.Credentials.AgentToken);
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Initialize));
        if (contentType is not null) content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        var response = await http.PostAsync("/mcp", content);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);

        // Routing answers a wrong type with problem details (the SDK's endpoint declares what it accepts); a missing one reaches us.
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        if (response.Content.Headers.ContentType?.MediaType == "application/problem+json") Assert.Equal(415, body.GetProperty("status").GetInt32());
        else Assert.Equal((int)McpErrorCode.InvalidRequest, body.GetProperty("error").GetProperty("code").GetInt32());
    }

    [Fact]
    public async Task Oversized_body_is_refused_with_413()
    {
        // Expect: 100-continue lets the server refuse before the body is sent, but the client gives up waiting after
        // one second by default and starts writing; on a loaded machine the 413 then meets a half-sent body and the
        // client sees a broken pipe instead of the answer. Wait as long as the request may take.
        using var handler = new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromSeconds(30) };
        using var http = new HttpClient(handler) { BaseAddress = Host.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Host.Credentials.AgentToken);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var huge = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"pad\":\"" + new string('x', 2 * 1024 * 1024) + "\"}}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = Json(huge) };
        request.Headers.ExpectContinue = true;
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("garbage")]
    [InlineData("cpt_0011223344556677_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("cpo_admin_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task Missing_or_bad_agent_token_is_401_with_WWW_Authenticate(string? token)
    {
        using var http = McpHttp(token);
        var response = await http.PostAsync("/mcp", Json(Initialize));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("Bearer", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task The_operator_key_is_not_an_agent_token()
    {
        using var http = McpHttp(Host.Credentials.OperatorKey);
        var response = await http.PostAsync("/mcp", Json(Initialize));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Revoked_token_is_refused_mid_session_and_401_for_new_sessions()
    {
        var (token, id) = await Host.MintAsync("demo", "revoke-test-agent");
        await using var client = await Host.ConnectAsync(token);
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }));

        using (var op = Host.OperatorHttp())
        {
            var revoke = await op.DeleteAsync($"/api/v1/tenants/demo/tokens/{id}");
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" }), RefusalCodes.Unauthenticated);

        using var http = McpHttp(token);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/mcp", Json(Initialize))).StatusCode);
    }

    [Fact]
    public async Task Unknown_kill_scope_and_missing_reason_are_400_problems_and_set_nothing()
    {
        using var http = Host.OperatorHttp();
        var before = await ActiveSwitchCount(http);

        foreach (var body in new object[]
        {
            new { scope = "galaxy", reason = "x" },
            new { scope = "tenant", tenantId = "demo" },
            new { scope = "tenant", tenantId = "demo", reason = "   " },
            new { scope = "agent", tenantId = "demo", reason = "no agent id" },
            new { scope = "global", tenantId = "demo", reason = "global takes no ids" },
            new { scope = "tenant", tenantId = "bad|id", reason = "separator in id" },
        })
        {
            var response = await http.PostAsJsonAsync("/api/v1/kill-switches", body);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        var malformed = await http.PostAsync("/api/v1/kill-switches", Json("{\"scope\": "));
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);

        Assert.Equal(before, await ActiveSwitchCount(http));
    }

    [Fact]
    public async Task Operator_api_needs_an_operator_key()
    {
        using var anonymous = Host.Http();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/kill-switches")).StatusCode);

        using var agent = Host.Http(Host.Credentials.AgentToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await agent.GetAsync("/api/v1/kill-switches")).StatusCode);

        using var forged = Host.Http("cpo_admin_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        Assert.Equal(HttpStatusCode.Unauthorized, (await forged.PostAsJsonAsync("/api/v1/kill-switches", new { scope = "global", reason = "forged" })).StatusCode);
    }

    [Fact]
    public async Task Clearing_an_unknown_switch_is_404()
    {
        using var http = Host.OperatorHttp();
        var response = await http.PostAsJsonAsync("/api/v1/kill-switches/ks_nope/clear", new { reason = "cleanup" });
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_server_endpoint_is_404()
    {
        using var http = McpHttp(Host.Credentials.AgentToken);
        var response = await http.PostAsync("/mcp/no-such-server", Json(Initialize));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Foreign_host_and_origin_are_refused_against_DNS_rebinding()
    {
        using var http = McpHttp(Host.Credentials.AgentToken);

        using var foreignHost = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = Json(Initialize) };
        foreignHost.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(foreignHost)).StatusCode);

        using var foreignOrigin = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = Json(Initialize) };
        foreignOrigin.Headers.Add("Origin", "http://attacker.example");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(foreignOrigin)).StatusCode);

        using var loopbackOrigin = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = Json(Initialize) };
        loopbackOrigin.Headers.Add("Origin", "http://localhost:3000");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(loopbackOrigin)).StatusCode);

        using var healthFromForeignHost = new HttpRequestMessage(HttpMethod.Get, "/healthz");
        healthFromForeignHost.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(healthFromForeignHost)).StatusCode);
    }

    private HttpClient McpHttp(string? token)
    {
        var http = Host.Http(token);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        return http;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<int> ActiveSwitchCount(HttpClient http)
    {
        var list = await http.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
        return list.GetProperty("items").GetArrayLength();
    }
}
