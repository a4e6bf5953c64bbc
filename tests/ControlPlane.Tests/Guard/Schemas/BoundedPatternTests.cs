using System.Diagnostics;
using System.Text.Json;
using ControlPlane.Guard.Schemas;
using Json.Schema;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Guard.Schemas;

/// <summary>
/// No pattern a schema names can burn the CPU: catastrophic patterns against inputs that would take the
/// backtracking engine minutes are decided in milliseconds, patterns that need backtracking run under a timeout
/// (tool schemas) or are refused (operator overrides), and the ECMA-262 meaning of a pattern is kept.
/// </summary>
public sealed class BoundedPatternTests(ITestOutputHelper output)
{
    /// <summary>Generous: the backtracking engine needs seconds at 30 characters and doubles per character.</summary>
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(2);

    public static TheoryData<string, int> Catastrophic => new()
    {
        { "^(a+)+$", 30 },
        { "^(a+)+$", 40 },
        { "(a|aa)+$", 40 },
        { "^(a|a?)+$", 40 },
        { "^([a-z]+)*[0-9]$", 40 },
    };

    [Theory]
    [MemberData(nameof(Catastrophic))]
    public void A_catastrophic_pattern_in_a_tool_schema_is_decided_quickly_and_refused(string pattern, int length)
    {
        var schema = ArgumentSchema.ForTool(Schema(pattern));
        var input = Arguments(new string('a', length - 1) + "b");

        var clock = Stopwatch.StartNew();
        var violations = schema.Validate(input);
        clock.Stop();

        output.WriteLine($"{pattern} against {length} characters: {clock.Elapsed.TotalMilliseconds:F2} ms, {violations.Count} violation(s): {string.Join("; ", violations.Select(v => v.Pointer + " " + v.Message))}");
        Assert.Contains(violations, v => v.Pointer == "/text");
        Assert.True(clock.Elapsed < Generous, $"Took {clock.Elapsed}.");
        // The same pattern still accepts what it should.
        var accepted = pattern.Contains("[0-9]", StringComparison.Ordinal) ? new string('a', length - 1) + "7" : new string('a', length);
        Assert.Empty(schema.Validate(Arguments(accepted)));
    }

    [Fact]
    public void A_pattern_that_needs_backtracking_runs_under_the_budget_in_a_tool_schema_and_the_call_is_refused_as_too_slow()
    {
        // The lookahead keeps it off the linear engine; the nested quantifier makes it exponential there.
        var schema = ArgumentSchema.ForTool(Schema("^(?=a)(a+)+$"));
        var input = Arguments(new string('a', 39) + "b");

        var clock = Stopwatch.StartNew();
        var violations = schema.Validate(input);
        clock.Stop();

        output.WriteLine($"backtracking fallback: {clock.Elapsed.TotalMilliseconds:F1} ms (budget {ArgumentSchema.Budget.TotalMilliseconds} ms, match timeout {SchemaRegex.MatchTimeout.TotalMilliseconds} ms): {violations.Single().Message}");
        var violation = Assert.Single(violations);
        Assert.Equal("/text", violation.Pointer);
        Assert.Contains("took too long", violation.Message);
        Assert.True(clock.Elapsed < Generous, $"Took {clock.Elapsed}.");

        // And a value it matches quickly still passes.
        Assert.Empty(schema.Validate(Arguments("aaaa")));
    }

    [Fact]
    public void Many_slow_values_in_one_call_share_one_budget()
    {
        var schema = ArgumentSchema.ForTool(JsonDocument.Parse("""
            {"type":"object","properties":{"items":{"type":"array","items":{"type":"string","pattern":"^(?=a)(a+)+$"}}}}
            """).RootElement);
        var slow = new string('a', 39) + "b";
        var input = JsonDocument.Parse(JsonSerializer.Serialize(new { items = Enumerable.Repeat(slow, 200).ToArray() })).RootElement;

        var clock = Stopwatch.StartNew();
        var violations = schema.Validate(input);
        clock.Stop();

        output.WriteLine($"200 slow values: {clock.Elapsed.TotalMilliseconds:F1} ms; {violations.Single().Pointer}: {violations.Single().Message}");
        Assert.Contains("took too long", Assert.Single(violations).Message);
        Assert.True(clock.Elapsed < Generous, $"Took {clock.Elapsed}; 200 timeouts of {SchemaRegex.MatchTimeout} each would be {200 * SchemaRegex.MatchTimeout}.");
    }

    [Theory]
    [InlineData("^(?=a)(a+)+$")]
    [InlineData(@"^(a)\1$")]
    [InlineData(@"\bword\b")]
    public void An_operator_override_whose_pattern_needs_backtracking_is_refused_with_the_pattern_named(string pattern)
    {
        var problem = ArgumentSchema.Check(Schema(pattern).GetRawText());
        output.WriteLine(problem);
        Assert.NotNull(problem);
        Assert.Contains("backtracking", problem);
        Assert.Contains(pattern, problem);
    }

    [Theory]
    [InlineData("^(a+)+$")]
    [InlineData("(a|aa)+$")]
    [InlineData(@"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")]
    public void An_operator_override_with_a_linear_pattern_is_accepted(string pattern) =>
        Assert.Null(ArgumentSchema.Check(Schema(pattern).GetRawText()));

    [Fact]
    public void A_pattern_property_that_needs_backtracking_is_refused_even_in_a_tool_schema()
    {
        var schema = JsonDocument.Parse("""{"type":"object","patternProperties":{"^(?=x)(x+)+$":{"type":"string"}}}""").RootElement;
        var ex = Assert.Throws<JsonSchemaException>(() => ArgumentSchema.ForTool(schema));
        Assert.Contains("backtracking", ex.Message);
    }

    [Fact]
    public void A_catastrophic_pattern_property_is_decided_quickly()
    {
        var schema = ArgumentSchema.ForTool(JsonDocument.Parse("""{"type":"object","patternProperties":{"^(a+)+$":{"type":"integer"}}}""").RootElement);
        var input = JsonDocument.Parse($$"""{"{{new string('a', 39)}}b": 1, "{{new string('a', 40)}}": "x"}""").RootElement;
        var clock = Stopwatch.StartNew();
        var violations = schema.Validate(input);
        output.WriteLine($"patternProperties: {clock.Elapsed.TotalMilliseconds:F2} ms, {string.Join("; ", violations.Select(v => v.Pointer + " " + v.Message))}");
        Assert.NotEmpty(violations);
        Assert.True(clock.Elapsed < Generous);
    }

    [Theory]
    [InlineData("http://json-schema.org/draft-07/schema#")]
    [InlineData("http://json-schema.org/draft-06/schema#")]
    [InlineData("https://json-schema.org/draft/2019-09/schema")]
    [InlineData("https://json-schema.org/draft/2020-12/schema")]
    public void A_schema_that_names_its_dialect_gets_the_bounded_patterns_too(string dialect)
    {
        var schema = ArgumentSchema.ForTool(JsonDocument.Parse(
            "{\"$schema\":\"" + dialect + "\",\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"pattern\":\"^(a+)+$\"}}}").RootElement);
        var clock = Stopwatch.StartNew();
        var violations = schema.Validate(Arguments(new string('a', 39) + "b"));
        output.WriteLine($"{dialect}: {clock.Elapsed.TotalMilliseconds:F2} ms");
        Assert.Contains(violations, v => v.Pointer == "/text");
        Assert.True(clock.Elapsed < Generous);
    }

    [Theory]
    [InlineData(@"^\d+$", "123", true)]
    [InlineData(@"^\d+$", "١٢٣", false)]
    [InlineData(@"^\d+$", "123\n", false)]
    [InlineData(@"^\w+$", "abc_1", true)]
    [InlineData(@"^\w+$", "é", false)]
    [InlineData(@"^[\w-]+$", "a-b", true)]
    [InlineData(@"^[\w-]+$", "a\u00e9", false)]
    [InlineData(@"^\s$", "\u2003", false)]
    [InlineData(@"^\S+$", "ab", true)]
    [InlineData(@"^a\$$", "a$", true)]
    [InlineData("^[$]+$", "$$", true)]
    [InlineData(@"\bfoo\b", "a foo b", true)]
    [InlineData(@"\bfoo\b", "afoob", false)]
    public void Patterns_keep_their_ECMA_262_meaning(string pattern, string value, bool valid) =>
        Assert.Equal(valid, ArgumentSchema.ForTool(Schema(pattern)).Validate(Arguments(value)).Count == 0);

    [Fact]
    public void Under_load_a_pattern_never_lets_through_a_value_it_does_not_match()
    {
        // .NET's non-backtracking engine with a match timeout answered "match" for fresh instances under load; the
        // linear patterns therefore run without one (bounded by input length instead). Fresh schemas, many threads.
        var wrong = 0;
        Parallel.For(0, 2000, _ =>
        {
            var schema = ArgumentSchema.ForTool(Schema(@"^[\w-]+$"));
            if (schema.Validate(Arguments("a\u00e9")).Count == 0) Interlocked.Increment(ref wrong);
        });
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void A_value_too_long_to_match_is_refused_without_matching_it()
    {
        var schema = ArgumentSchema.ForTool(Schema("^a+$"));
        var violation = Assert.Single(schema.Validate(Arguments(new string('a', SchemaRegex.MaxMatchedLength + 1))));
        Assert.Contains("longer than", violation.Message);
        Assert.Empty(schema.Validate(Arguments(new string('a', SchemaRegex.MaxMatchedLength))));
    }

    [Fact]
    public void A_format_regex_value_is_checked_quickly()
    {
        var schema = ArgumentSchema.ForTool(JsonDocument.Parse("""{"type":"object","properties":{"text":{"type":"string","format":"regex"}}}""").RootElement);
        var clock = Stopwatch.StartNew();
        schema.Validate(Arguments("^(a+)+$" + new string('a', 40)));
        Assert.True(clock.Elapsed < Generous);
    }

    [Fact]
    public void An_overlong_pattern_is_refused()
    {
        var problem = ArgumentSchema.Check(Schema(new string('a', SchemaRegex.MaxPatternLength + 1)).GetRawText());
        Assert.NotNull(problem);
        Assert.Contains("at most", problem);
    }

    private static JsonElement Schema(string pattern) => JsonDocument.Parse(JsonSerializer.Serialize(new
    {
        type = "object",
        properties = new { text = new { type = "string", pattern } },
    })).RootElement;

    private static JsonElement Arguments(string text) => JsonDocument.Parse(JsonSerializer.Serialize(new { text })).RootElement;
}
