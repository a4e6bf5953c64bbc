using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Redaction;

namespace ControlPlane.Tests.Audit.Redaction;

public sealed class CanonicalJsonTests
{
    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    [Fact]
    public void Key_order_and_whitespace_do_not_matter()
    {
        var a = JsonElement.Parse("""{"b":{"y":[1,{"q":true,"p":null}],"x":"s"},"a":1}""");
        var b = JsonElement.Parse("""
            {
              "a" : 1,
              "b" : { "x" : "s", "y" : [ 1, { "p" : null, "q" : true } ] }
            }
            """);
        Assert.Equal("""{"a":1,"b":{"x":"s","y":[1,{"p":null,"q":true}]}}""", CanonicalJson.Serialize(a));
        Assert.Equal(CanonicalJson.Serialize(a), CanonicalJson.Serialize(b));
        Assert.Equal(CanonicalJson.Serialize(a), CanonicalJson.Serialize(Args(b.GetRawText())));
    }

    [Fact]
    public void Keys_sort_by_ordinal_utf16_order()
    {
        // 'B' < '_' < 'a' < 'é' (U+00E9) < U+FB01 < U+1F600 (a surrogate pair, D83D, sorts below U+FB01 in UTF-16).
        var value = JsonElement.Parse("""{"\ufb01":0,"é":1,"a":2,"_":3,"B":4,"😀":5,"":6}""");
        Assert.Equal("{\"\":6,\"B\":4,\"_\":3,\"a\":2,\"é\":1,\"😀\":5,\"\uFB01\":0}", CanonicalJson.Serialize(value));
    }

    [Theory]
    [InlineData("1.50e3")]
    [InlineData("-0")]
    [InlineData("1E+400")]
    [InlineData("123456789012345678901234567890")]
    [InlineData("0.1000")]
    public void Numbers_keep_their_exact_text(string number)
    {
        Assert.Equal($$"""{"n":{{number}}}""", CanonicalJson.Serialize(JsonElement.Parse($$"""{ "n" : {{number}} }""")));
    }

    [Fact]
    public void Strings_are_escaped_minimally_and_the_same_way_however_the_input_escaped_them()
    {
        var escaped = JsonElement.Parse("""["\u0041\u00e9\ud83d\ude00\u2028<>&'+`\/","\"\\\b\f\n\r\t\u0000\u001f\u007f"]""");
        var literal = JsonElement.Parse("[\"Aé😀\u2028<>&'+`/\",\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001F\u007f\"]");
        const string expected = "[\"Aé😀\u2028<>&'+`/\",\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f\"]";
        Assert.Equal(expected, CanonicalJson.Serialize(escaped));
        Assert.Equal(expected, CanonicalJson.Serialize(literal));
    }

    [Fact]
    public void Duplicate_keys_keep_the_last_value()
    {
        Assert.Equal("""{"a":3,"b":2}""", CanonicalJson.Serialize(JsonElement.Parse("""{"a":1,"b":2,"a":3}""")));
    }

    [Fact]
    public void Null_and_empty_arguments_are_an_empty_object()
    {
        Assert.Equal("{}", CanonicalJson.Serialize((IDictionary<string, JsonElement>?)null));
        Assert.Equal("{}", CanonicalJson.Serialize(new Dictionary<string, JsonElement>()));
    }

    [Fact]
    public void Write_puts_the_canonical_text_where_a_value_goes()
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WritePropertyName("args");
            CanonicalJson.Write(writer, Args("""{ "b": 2, "a": [1, 2] }"""));
            writer.WritePropertyName("value");
            CanonicalJson.Write(writer, JsonElement.Parse("""{ "y": "é", "x": 1 }"""));
            writer.WriteEndObject();
        }

        var written = JsonElement.Parse(Encoding.UTF8.GetString(buffer.ToArray()));
        Assert.Equal("""{"a":[1,2],"b":2}""", written.GetProperty("args").GetRawText());
        Assert.Equal("""{"x":1,"y":"é"}""", written.GetProperty("value").GetRawText());
    }

    [Fact]
    public void Lone_surrogates_and_invalid_utf8_become_the_replacement_character()
    {
        Assert.Equal("\"a\uFFFDb\"", CanonicalJson.Serialize(JsonElement.Parse("\"a\\ud800b\"")));
        byte[] bytes = [(byte)'"', 0xC3, 0x28, (byte)'"'];
        using var document = JsonDocument.Parse(bytes);
        Assert.Equal("\"\uFFFD(\"", CanonicalJson.Serialize(document.RootElement));
    }

    [Fact]
    public void Large_documents_round_trip()
    {
        var items = Enumerable.Range(0, 5000).Select(i => new { id = i, name = "item " + i, tags = new[] { "x", "y" } });
        var value = JsonSerializer.SerializeToElement(new { items, big = new string('z', 300_000) });
        var canonical = CanonicalJson.Serialize(value);
        Assert.True(JsonElement.DeepEquals(value, JsonElement.Parse(canonical)));
        Assert.Equal(canonical, CanonicalJson.Serialize(JsonElement.Parse(canonical)));
    }
}
