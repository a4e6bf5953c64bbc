using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Tests.Security;
using CsCheck;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Fuzz;

/// <summary>
/// The bad-input corpus (Fuzz/corpus/manifest.json, one body file per case) and seeded random mutations of
/// valid requests, sent to the real host over HTTP. Every input gets a structured answer in time, the host
/// stays up with bounded memory, and nothing is written that should not be.
/// </summary>
[Collection(SecurityHostCollection.Name)]
public sealed class BadInputCorpusTests(SecurityHostFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerWithin = TimeSpan.FromSeconds(10);
    private static readonly string CorpusDir = Path.Combine(AppContext.BaseDirectory, "Fuzz", "corpus");
    private const int MiB = 1024 * 1024;

    private ControlPlaneTestHost Host => fixture.Host;

    private sealed record Case(string Name, string Method, string Path, string Auth, string Expect, string? Body, bool Session,
        Dictionary<string, string>? Headers, string? ContentType, bool Audited, string? Note);

    private sealed record Answer(HttpStatusCode Status, string? MediaType, string Body, TimeSpan Took);

    [Fact]
    public async Task Every_corpus_input_gets_a_structured_answer_in_time_and_writes_nothing_it_should_not()
    {
        var cases = LoadCorpus();
        Assert.True(cases.Count >= 60, $"The corpus has only {cases.Count} cases.");

        await using var warm = await Host.ConnectAsync();
        await warm.ListToolsAsync();
        var memoryBefore = WorkingSet();
        var stateBefore = await StateAsync();
        var auditBefore = await AuditCountAsync();

        var failures = new List<string>();
        var slowest = TimeSpan.Zero;

        // Cases that never reach a tool call first: the audit must not move while they run.
        foreach (var @case in cases.OrderBy(c => c.Audited))
        {
            if (@case.Audited && auditBefore >= 0)
            {
                var quiet = await AuditCountAsync();
                if (quiet != auditBefore) failures.Add($"{quiet - auditBefore} audit record(s) were written by requests that never reached a tool call.");
                auditBefore = -1;
            }

            Answer answer;
            try
            {
                answer = await SendAsync(@case, await BodyOf(@case));
            }
            catch (Exception ex) when (ex is TaskCanceledException or HttpRequestException)
            {
                failures.Add($"{@case.Name}: no answer ({ex.GetType().Name}: {ex.Message})");
                continue;
            }

            slowest = answer.Took > slowest ? answer.Took : slowest;
            if (Classify(@case.Expect, answer) is { } problem) failures.Add($"{@case.Name}: {problem}");
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases failed:\n" + string.Join("\n", failures));
        Assert.True(await AuditCountAsync() > 0, "The audited cases should have left records (is the audit count blind?).");

        Assert.Equal(stateBefore, await StateAsync());
        await AssertAliveAsync();
        var growth = WorkingSet() - memoryBefore;
        output.WriteLine($"{cases.Count} cases; slowest answer {slowest.TotalMilliseconds:0} ms; working set growth {growth / (double)MiB:0.0} MiB");
        Assert.True(growth < 400L * MiB, $"The working set grew by {growth / MiB} MiB over the corpus.");
    }

    [Fact]
    public async Task Seeded_mutations_of_valid_requests_never_get_a_server_error()
    {
        string[] seeds =
        [
            """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":{"email":"ada@example.com"}}}""",
            """{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_orders","arguments":{"customer_id":"cust_DEMO00000001"}}}""",
            """{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_refund","arguments":{"customer_id":"cust_DEMO00000001","amount_cents":4200,"reason":"duplicate","confirmation_token":"cpc_x_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}""",
            """{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"abc"}}""",
            """{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"x"}}""",
        ];

        var session = await OpenSessionAsync();
        var failures = new List<string>();
        var sent = 0;
        var mutation = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[0, 7], Gen.Int[0, int.MaxValue], Gen.OneOf<string>(Gen.String[Gen.Char.AlphaNumeric, 0, 8], Gen.OneOf("\"", "{", "]", "\\u0000", "1e999", "null", "\\", "\uD800", "\u202E", "[[[[[[", ",", ":")),
            (seed, kind, at, junk) => Mutate(seeds[seed], kind, at, junk));

        // One sample of 300 mutations from a fixed seed: the same bodies on every run, so a failure reproduces.
        await mutation.Array[300].SampleAsync(async bodies =>
        {
            foreach (var body in bodies)
            {
                var answer = await SendAsync(new Case("mutation", "POST", "/mcp", "agent", "any-structured", null, true, null, "application/json", false, null), body, session);
                sent++;
                if (Classify("any-structured", answer) is { } problem) failures.Add($"{problem} for body {Encoding.UTF8.GetString(body)}");
            }
        }, seed: "0000EulsSHF5", iter: 1, threads: 1);

        output.WriteLine($"{sent} seeded mutations sent");
        Assert.True(sent >= 300, $"Only {sent} mutations were sent.");
        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} mutations failed:\n" + string.Join("\n", failures.Take(20)));
        await AssertAliveAsync();
    }

    /// <summary>One of eight byte-level edits: truncate, delete, duplicate, insert junk, swap a value, flip a byte, wrap, repeat.</summary>
    private static byte[] Mutate(string seed, int kind, int at, string junk)
    {
        var s = seed;
        var i = at % s.Length;
        s = kind switch
        {
            0 => s[..i],
            1 => s.Remove(i, Math.Min(1 + at % 7, s.Length - i)),
            2 => s.Insert(i, s.Substring(i, Math.Min(12, s.Length - i))),
            3 => s.Insert(i, junk),
            4 => s.Replace("\"ada@example.com\"", junk.Length > 0 ? junk : "0").Replace("4200", junk.Length > 0 ? junk : "-1"),
            5 => s.Remove(i, 1).Insert(i, ((char)(s[i] ^ (1 << (at % 7)))).ToString()),
            6 => "[" + s + "," + s + "]",
            _ => s.Insert(s.IndexOf("\"params\"", StringComparison.Ordinal) is var p and >= 0 ? p : 0, "\"params\":" + junk + ","),
        };
        var bytes = Encoding.UTF8.GetBytes(s);
        if (kind == 5 && at % 11 == 0 && bytes.Length > 0) bytes[at % bytes.Length] = 0xFF; // invalid UTF-8 now and then
        return bytes;
    }

    private static string? Classify(string expect, Answer answer)
    {
        var status = (int)answer.Status;
        var described = $"{status} {answer.MediaType} {Shorten(answer.Body)}";
        if (status >= 500) return "server error: " + described;
        if (answer.Took > AnswerWithin) return $"took {answer.Took.TotalSeconds:0.0} s";

        var rpc = JsonRpcOf(answer);
        var isError = rpc is { } e && e.TryGetProperty("error", out var error) && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.Number;
        var isProblem = status >= 400 && answer.MediaType == "application/problem+json";
        switch (expect.Split(':'))
        {
            case ["jsonrpc-error"]:
                return isError ? null : "expected a JSON-RPC error, got " + described;
            case ["problem"]:
                return isProblem ? null : "expected problem+json, got " + described;
            case ["status", "4xx"]:
                return status is >= 400 and < 500 ? null : "expected a 4xx, got " + described;
            case ["status", var exact]:
                return status.ToString() == exact ? null : $"expected {exact}, got " + described;
            case ["refusal", var refusal]:
                return rpc is { } r && r.TryGetProperty("result", out var result) && result.TryGetProperty("isError", out var flag) && flag.ValueKind == JsonValueKind.True
                    && JsonDocument.Parse(result.GetProperty("content")[0].GetProperty("text").GetString()!).RootElement.GetProperty("code").GetString() == refusal
                    ? null
                    : $"expected refusal {refusal}, got " + described;
            case ["any-structured"]:
                return isError || isProblem || (rpc is { } ok && ok.TryGetProperty("result", out _)) || status is >= 400 and < 500 || (status == 202 && answer.Body.Length == 0)
                    ? null
                    : "expected a structured answer, got " + described;
            default:
                return $"unknown expectation '{expect}'";
        }
    }

    /// <summary>The JSON-RPC message of a response, whether sent as JSON or as one SSE event.</summary>
    private static JsonElement? JsonRpcOf(Answer answer)
    {
        var text = answer.Body;
        if (answer.MediaType == "text/event-stream")
        {
            text = string.Join("", text.Split('\n').Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..].Trim()));
        }

        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task<Answer> SendAsync(Case @case, byte[]? body, string? session = null)
    {
        if (@case.Session) session ??= await OpenSessionAsync();
        // Header values outside ASCII go out as raw UTF-8 bytes, as a hostile client would send them.
        using var http = new HttpClient(new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8 }) { BaseAddress = Host.BaseUrl };
        using var request = new HttpRequestMessage(new HttpMethod(@case.Method), @case.Path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (@case.ContentType is { Length: > 0 } type) request.Content.Headers.TryAddWithoutValidation("Content-Type", type);

            // A large body waits for the server's go-ahead: a server that refuses it (413) closes the connection,
            // and a client still writing would see a broken pipe instead of the answer under test.
            if (body.Length > 64 * 1024) request.Headers.ExpectContinue = true;
        }

        var accept = @case.Headers?.GetValueOrDefault("Accept") ?? "application/json, text/event-stream";
        if (accept.Length > 0) request.Headers.TryAddWithoutValidation("Accept", accept);
        if (session is not null) request.Headers.TryAddWithoutValidation("Mcp-Session-Id", session);
        foreach (var (name, value) in @case.Headers ?? [])
        {
            if (name is "Accept") continue;
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }

        foreach (var value in AuthorizationOf(@case.Auth)) request.Headers.TryAddWithoutValidation("Authorization", value);

        using var timeout = new CancellationTokenSource(AnswerWithin * 2);
        var clock = Stopwatch.StartNew();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        var text = await response.Content.ReadAsStringAsync(timeout.Token);
        return new Answer(response.StatusCode, response.Content.Headers.ContentType?.MediaType, text, clock.Elapsed);
    }

    private IEnumerable<string> AuthorizationOf(string auth) => auth switch
    {
        "none" => [],
        "agent" => ["Bearer " + Host.Credentials.AgentToken],
        "operator" => ["Bearer " + Host.Credentials.OperatorKey],
        "agent+garbage" => ["Bearer " + Host.Credentials.AgentToken + "x"],
        "agent+twice" => ["Bearer " + Host.Credentials.AgentToken, "Bearer " + Host.Credentials.AgentToken],
        _ => [auth],
    };

    /// <summary>A fresh initialized session for the demo agent, opened over raw HTTP.</summary>
    private async Task<string> OpenSessionAsync()
    {
        using var http = Host.Http(Host.Credentials.AgentToken);
        return await RawMcpSession.OpenAsync(http, "fuzz");
    }

    private static async Task<byte[]?> BodyOf(Case @case)
    {
        if (@case.Body is { } file) return await File.ReadAllBytesAsync(Path.Combine(CorpusDir, file));
        var note = @case.Note ?? "";
        var api = @case.Path.StartsWith("/api/", StringComparison.Ordinal);
        string Wrap(string value, string field = "email") => api
            ? $$"""{"scope":"tenant","tenantId":"demo","reason":{{value}}}"""
            : "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"lookup_customer_by_email\",\"arguments\":{\"" + field + "\":" + value + "}}}";

        string? text = note switch
        {
            _ when note.StartsWith("generate:deep-nesting", StringComparison.Ordinal) => Wrap(new string('[', 100_000) + new string(']', 100_000)),
            _ when note.StartsWith("generate:string 2 MiB", StringComparison.Ordinal) => Wrap("\"" + new string('x', 2 * MiB) + "\""),
            _ when note.StartsWith("generate:array of 600000", StringComparison.Ordinal) => Wrap("[" + string.Join(',', Enumerable.Repeat("1", 600_000)) + "]"),
            _ when note.StartsWith("generate:array of 150000", StringComparison.Ordinal) =>
                """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup_customer_by_email","arguments":{"email":"ada@example.com","pad":["""
                + string.Join(',', Enumerable.Repeat("1", 150_000)) + "]}}}",
            _ when note.StartsWith("generate:string of 900000", StringComparison.Ordinal) => Wrap("\"" + new string('a', 900_000) + "@example.com\""),
            _ => null,
        };
        return text is null ? null : Encoding.UTF8.GetBytes(text);
    }

    private static List<Case> LoadCorpus()
    {
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(CorpusDir, "manifest.json")));
        return
        [
            .. manifest.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
                c.GetProperty("name").GetString()!,
                c.GetProperty("method").GetString()!,
                c.GetProperty("path").GetString()!,
                c.GetProperty("auth").GetString()!,
                c.GetProperty("expect").GetString()!,
                c.TryGetProperty("body", out var body) ? body.GetString() : null,
                c.TryGetProperty("session", out var session) && session.GetBoolean(),
                c.TryGetProperty("headers", out var headers) ? headers.EnumerateObject().ToDictionary(h => h.Name, h => h.Value.GetString()!) : null,
                c.TryGetProperty("contentType", out var type) ? type.GetString() : "application/json",
                c.TryGetProperty("audited", out var audited) && audited.GetBoolean(),
                c.TryGetProperty("note", out var note) ? note.GetString() : null)),
        ];
    }

    /// <summary>What rejected REST requests could have changed: switches, tenants, the demo tenant's tokens, limits and modes.</summary>
    private async Task<string> StateAsync()
    {
        using var admin = Host.OperatorHttp();
        var parts = new List<string>();
        foreach (var path in new[] { "/api/v1/kill-switches", "/api/v1/tenants", "/api/v1/tenants/demo/tokens", "/api/v1/tenants/demo/rate-limits", "/api/v1/tenants/demo/servers" })
        {
            parts.Add(path + " " + await admin.GetStringAsync(path));
        }

        return string.Join("\n", parts);
    }

    private async Task<int> AuditCountAsync()
    {
        using var admin = Host.OperatorHttp();
        var export = await admin.GetStringAsync("/api/v1/audit/export?format=jsonl&includeIntents=true");
        return export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    private async Task AssertAliveAsync()
    {
        using var http = Host.Http();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        await using var client = await Host.ConnectAsync();
        var result = await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" });
        Assert.True(result.IsError is not true, "The host no longer serves a valid call after the bad input.");
    }

    private static long WorkingSet()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    private static string Shorten(string text) => text.Length <= 240 ? text : text[..240] + "…";
}
