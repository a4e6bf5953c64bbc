using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Tests.Infrastructure;

namespace ControlPlane.Tests.Security;

/// <summary>A repeated key is refused where the ambiguity would matter: tool arguments and operator API bodies.</summary>
[Collection(SecurityHostCollection.Name)]
public sealed class DuplicateKeyEndToEndTests(SecurityHostFixture fixture)
{
    private ControlPlaneTestHost Host => fixture.Host;

    [Fact]
    public async Task A_tools_call_the_SDK_cannot_read_is_a_JSON_RPC_error_and_audited_as_refused()
    {
        var (token, _) = await Host.MintAsync("demo", "unreadable-agent", scopes: ["server:support-desk:read"]);
        using var http = Host.Http(token);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var session = await RawMcpSession.OpenAsync(http, "unreadable");

        var answer = await CallAsync(http, session,
            """{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":["ada@example.com"]}}""");
        Assert.True(answer.TryGetProperty("error", out _), "An unreadable tools/call is a JSON-RPC error: " + answer);

        using var admin = Host.OperatorHttp();
        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&agentId=unreadable-agent&decision=refused");
        var record = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal("INVALID_REQUEST", record.GetProperty("code").GetString());
        Assert.Equal("lookup_customer_by_email", record.GetProperty("tool").GetString());
        Assert.Equal("tools/call", record.GetProperty("kind").GetString());
    }

    [Fact]
    public async Task A_repeated_tool_argument_is_refused_invalid_arguments_with_its_pointer_and_audited()
    {
        var (token, _) = await Host.MintAsync("demo", "dup-agent", scopes: ["server:support-desk:read"]);
        using var http = Host.Http(token);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var session = await RawMcpSession.OpenAsync(http, "dup");

        var answer = await CallAsync(http, session,
            """{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":{"email":"grace@example.com","\u0065mail":"ada@example.com"}}}""");
        var result = answer.GetProperty("result");
        Assert.True(result.GetProperty("isError").GetBoolean());
        // lookup_customer_by_email advertises an outputSchema, so its refusal is the first text block alone.
        Assert.False(result.TryGetProperty("structuredContent", out _));
        var refusal = JsonDocument.Parse(result.GetProperty("content")[0].GetProperty("text").GetString()!).RootElement;
        Assert.Equal("INVALID_ARGUMENTS", refusal.GetProperty("code").GetString());
        var violation = Assert.Single(refusal.GetProperty("violations").EnumerateArray());
        Assert.Equal("/email", violation.GetProperty("pointer").GetString());
        Assert.Contains("more than once", violation.GetProperty("message").GetString());

        using var admin = Host.OperatorHttp();
        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/v1/audit?tenantId=demo&agentId=dup-agent&tool=lookup_customer_by_email");
        var record = Assert.Single(audit.GetProperty("items").EnumerateArray());
        Assert.Equal("refused", record.GetProperty("decision").GetString());
        Assert.Equal("INVALID_ARGUMENTS", record.GetProperty("code").GetString());

        // The same call without the repeat goes through.
        var fine = await CallAsync(http, session,
            """{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":{"email":"ada@example.com"}}}""");
        Assert.False(fine.GetProperty("result").TryGetProperty("isError", out var isError) && isError.GetBoolean());
    }

    [Fact]
    public async Task A_repeated_key_in_an_operator_api_body_is_a_400_naming_it_and_changes_nothing()
    {
        using var admin = Host.OperatorHttp();
        var before = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches")).GetProperty("items").GetArrayLength();

        // Both values are valid on their own: only the repeat makes the request ambiguous.
        var response = await admin.PostAsync("/api/v1/kill-switches", new StringContent(
            """{"scope":"tenant","tenantId":"demo","reason":"incident 1","reason":"incident 2"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("reason", problem.GetProperty("detail").GetString());

        var after = (await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches")).GetProperty("items").GetArrayLength();
        Assert.Equal(before, after);
    }

    /// <summary>Sends one JSON-RPC request and returns its response, whether sent as JSON or as an SSE event.</summary>
    private static async Task<JsonElement> CallAsync(HttpClient http, string session, string body) =>
        (await RawMcpSession.ExchangeAsync(http, session, body)).Last(message => message.TryGetProperty("id", out _));
}
