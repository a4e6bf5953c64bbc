using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Results;
using ControlPlane.Policy;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Limits;

public sealed class ResultShaperUnitTests
{
    private static readonly ResultShaper Shaper = new(new Redactor(), Options.Create(new ResultOptions()));

    private static CallToolResult Result(string json) => new()
    {
        StructuredContent = JsonDocument.Parse(json).RootElement.Clone(),
        Content = [new TextContentBlock { Text = json }],
    };

    private static ProjectionSetting Projection(string[] fields, int? maxItems = null, int? maxBytes = null, bool redact = true) =>
        new("srv", "tool", fields, maxItems, maxBytes, redact, "test", "test", DateTimeOffset.UtcNow);

    [Fact]
    public void Projects_nested_fields_through_arrays_and_caps_them()
    {
        var shaped = Shaper.Shape(Result("""{"customer_id":"c1","secret":"x","orders":[{"id":"o1","status":"paid","total":5},{"id":"o2","status":"new","total":6},{"id":"o3","status":"new","total":7}]}"""),
            Projection(["/customer_id", "/orders/*/id", "/orders/*/status"], maxItems: 2));
        var json = shaped.StructuredContent!.Value;
        Assert.Equal("c1", json.GetProperty("customer_id").GetString());
        Assert.False(json.TryGetProperty("secret", out _));
        Assert.True(json.GetProperty("_truncated").GetBoolean());
        Assert.Equal(2, json.GetProperty("orders").GetArrayLength());
        Assert.False(json.GetProperty("orders")[0].TryGetProperty("total", out _));
        Assert.Equal(json.GetRawText(), ((TextContentBlock)shaped.Content[0]).Text);
    }

    [Fact]
    public void A_pointer_ending_in_a_star_keeps_every_item_and_property_as_it_is_nulls_included()
    {
        var shaped = Shaper.Shape(Result("""{"tags":["a",null],"m":{"x":null,"y":1},"z":2}"""), Projection(["/tags/*", "/m/*"], redact: false));
        Assert.Equal("""{"tags":["a",null],"m":{"x":null,"y":1}}""", shaped.StructuredContent!.Value.GetRawText());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Overlapping_pointers_keep_what_either_kept_whatever_their_order(bool reversed)
    {
        // The deeper pointer reaches only the last item; the placeholders it holds the others with must not win.
        string[] fields = reversed ? ["/rows/*/id", "/rows/*"] : ["/rows/*", "/rows/*/id"];
        var shaped = Shaper.Shape(Result("""{"rows":["a",null,[1],{"id":1,"x":2}]}"""), Projection(fields, redact: false));
        Assert.Equal("""{"rows":["a",null,[1],{"id":1,"x":2}]}""", shaped.StructuredContent!.Value.GetRawText());
    }

    [Theory]
    [InlineData("name: Ada Lovelace, ssn: 078-05-1120")]
    [InlineData("\"078-05-1120\"")]
    [InlineData("  42")]
    public void With_a_projection_a_text_block_that_is_not_a_JSON_object_or_array_is_withheld(string text)
    {
        var result = Result("""{"id":"c1","ssn":"078-05-1120"}""");
        result.Content.Add(new TextContentBlock { Text = text });
        var shaped = Shaper.Shape(result, Projection(["/id"]));
        Assert.All(shaped.Content.OfType<TextContentBlock>(), t => Assert.DoesNotContain("078-05-1120", t.Text));
        Assert.Contains("withheld", ((TextContentBlock)shaped.Content[1]).Text);
    }

    [Fact]
    public void Redacts_PII_in_structured_content_and_prose()
    {
        var result = Result("""{"note":"call ada@example.com or +44 20 7946 0958"}""");
        result.Content.Add(new TextContentBlock { Text = "Reach me at ada@example.com" });
        var shaped = Shaper.Shape(result, null);
        Assert.DoesNotContain("ada@example.com", shaped.StructuredContent!.Value.GetRawText());
        Assert.All(shaped.Content.OfType<TextContentBlock>(), t => Assert.DoesNotContain("ada@example.com", t.Text));
    }

    [Fact]
    public void Oversized_results_are_replaced_by_an_explicit_marker()
    {
        var shaped = Shaper.Shape(Result("""{"rows":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}"""), Projection([], maxBytes: 64));
        Assert.True(shaped.StructuredContent!.Value.GetProperty("_truncated").GetBoolean());
        Assert.DoesNotContain("aaaa", shaped.StructuredContent!.Value.GetRawText());
    }
}
