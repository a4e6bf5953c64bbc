using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Guard;
using ControlPlane.Guard.Catalog;
using ControlPlane.Refusals;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using Xunit.Abstractions;

namespace ControlPlane.Tests.EndToEnd;

/// <summary>
/// No pattern can burn the CPU, end to end: an upstream tool whose input schema has a catastrophic pattern, and an
/// operator schema override with one, refuse a 40-character hostile argument in milliseconds with INVALID_ARGUMENTS,
/// while normal calls made at the same time complete.
/// </summary>
public sealed class PatternBudgetTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string Hostile = new string('a', 39) + "b";
    private ControlPlaneTestHost _host = null!;

    public async Task InitializeAsync() =>
        _host = await ControlPlaneTestHost.StartAsync(configureServices: services => services.AddSingleton<IToolSource>(new PatternTools()));

    public async Task DisposeAsync() => await _host.DisposeAsync();

    [Theory]
    [InlineData("regexlab__nested", "^(a+)+$")]
    [InlineData("regexlab__alternation", "(a|aa)+$")]
    [InlineData("regexlab__lookahead", "^(?=a)(a+)+$ (backtracking, under the budget)")]
    public async Task A_tool_with_a_catastrophic_pattern_refuses_a_hostile_argument_quickly_and_normal_calls_are_not_stalled(string tool, string pattern)
    {
        var (token, _) = await _host.MintAsync("demo", "pattern-agent", scopes: ["server:regexlab:read", "server:support-desk:read"]);
        await using var hostile = await _host.ConnectAsync(token);
        await using var normal = await _host.ConnectAsync(token);

        // A fair value passes: the pattern still works.
        RefusalAssert.Succeeded(await hostile.CallToolAsync(tool, new Dictionary<string, object?> { ["text"] = "aaaa" }));

        var hostileTimes = new List<double>();
        var normalTimes = new List<double>();
        var hostileCalls = Enumerable.Range(0, 16).Select(async _ =>
        {
            var clock = Stopwatch.StartNew();
            var result = await hostile.CallToolAsync(tool, new Dictionary<string, object?> { ["text"] = Hostile });
            lock (hostileTimes) hostileTimes.Add(clock.Elapsed.TotalMilliseconds);
            var refusal = RefusalAssert.Refused(result, RefusalCodes.InvalidArguments);
            Assert.Equal("/text", refusal.GetProperty("violations")[0].GetProperty("pointer").GetString());
        }).ToList();
        var normalCalls = Enumerable.Range(0, 16).Select(async _ =>
        {
            var clock = Stopwatch.StartNew();
            var result = await normal.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = "ada@example.com" });
            lock (normalTimes) normalTimes.Add(clock.Elapsed.TotalMilliseconds);
            RefusalAssert.Succeeded(result);
        }).ToList();

        var all = Task.WhenAll(hostileCalls.Concat(normalCalls));
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30))));
        await all;

        output.WriteLine($"{pattern} against {Hostile.Length} characters: 16 hostile calls refused in {Summary(hostileTimes)}; 16 concurrent normal calls completed in {Summary(normalTimes)}");
        Assert.All(hostileTimes, ms => Assert.True(ms < 10_000, $"A hostile call took {ms:F0} ms."));
        Assert.All(normalTimes, ms => Assert.True(ms < 10_000, $"A normal call took {ms:F0} ms."));
    }

    [Fact]
    public async Task An_operator_override_with_a_catastrophic_pattern_refuses_quickly_and_one_that_needs_backtracking_is_refused_at_set_time()
    {
        using var admin = _host.OperatorHttp();
        const string path = "/api/v1/servers/support-desk/tools/lookup_customer_by_email/schema";

        var refused = await admin.PutAsJsonAsync(path, new
        {
            schema = JsonDocument.Parse("""{"properties":{"email":{"type":"string","pattern":"^(?=a)(a+)+$"}}}""").RootElement,
            reason = "needs backtracking",
            tenantId = "demo",
        });
        var problem = await refused.Content.ReadAsStringAsync();
        output.WriteLine($"override with a lookahead: {(int)refused.StatusCode} {problem}");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        var errors = JsonDocument.Parse(problem).RootElement.GetProperty("errors").GetProperty("schema");
        Assert.Contains("backtracking", errors[0].GetString());

        var set = await admin.PutAsJsonAsync(path, new
        {
            schema = JsonDocument.Parse("""{"properties":{"email":{"type":"string","pattern":"(a|aa)+$"}}}""").RootElement,
            reason = "catastrophic on a backtracking engine",
            tenantId = "demo",
        });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        await using var client = await _host.ConnectAsync();
        var clock = Stopwatch.StartNew();
        var result = await client.CallToolAsync("lookup_customer_by_email", new Dictionary<string, object?> { ["email"] = Hostile });
        clock.Stop();
        var refusal = RefusalAssert.Refused(result, RefusalCodes.InvalidArguments);
        output.WriteLine($"override (a|aa)+$ against {Hostile.Length} characters: refused in {clock.Elapsed.TotalMilliseconds:F1} ms: {refusal.GetProperty("message").GetString()}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"Took {clock.Elapsed}.");
    }

    private static string Summary(List<double> ms)
    {
        var sorted = ms.Order().ToArray();
        return $"median {sorted[sorted.Length / 2]:F0} ms, max {sorted[^1]:F0} ms";
    }

    /// <summary>An upstream-like server whose read tools declare hostile patterns in their input schemas.</summary>
    private sealed class PatternTools : IToolSource
    {
        public IEnumerable<ToolDescriptor> GetTools() =>
        [
            Tool("nested", "^(a+)+$"),
            Tool("alternation", "(a|aa)+$"),
            Tool("lookahead", "^(?=a)(a+)+$"),
        ];

        private static ToolDescriptor Tool(string name, string pattern) => new(
            "regexlab",
            new Tool
            {
                Name = name,
                Annotations = new ToolAnnotations { ReadOnlyHint = true },
                InputSchema = JsonSerializer.SerializeToElement(new
                {
                    type = "object",
                    properties = new { text = new { type = "string", pattern } },
                    required = new[] { "text" },
                }),
            },
            ToolClassification.Read,
            (_, _) => ValueTask.FromResult(new CallToolResult { Content = [new TextContentBlock { Text = "matched" }] }),
            "regexlab" + ToolCatalog.Separator + name);
    }
}
