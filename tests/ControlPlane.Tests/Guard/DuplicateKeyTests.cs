using System.Text;
using System.Text.Json.Nodes;
using ControlPlane.Guard.Schemas;

namespace ControlPlane.Tests.Guard;

/// <summary>The scanner behind the guard's refusal of repeated keys (end to end: the Fuzz corpus' duplicate cases).</summary>
public sealed class DuplicateKeyTests
{
    [Theory]
    [InlineData("""{"a":1,"b":2}""", new string[0])]
    [InlineData("""{"a":1,"a":2}""", new[] { "/a" })]
    [InlineData("""{"a":1,"\u0061":2}""", new[] { "/a" })]
    [InlineData("""{"a":{"x":1,"y":{"z":1,"z":2}},"b":[{"k":1},{"k":1,"k":2}]}""", new[] { "/a/y/z", "/b/1/k" })]
    [InlineData("""{"a/b":1,"a/b":2,"m~n":1,"m~n":2}""", new[] { "/a~1b", "/m~0n" })]
    [InlineData("""[1,[2,{"q":1,"q":1}]]""", new[] { "/1/1/q" })]
    [InlineData("""{"A":1,"a":2}""", new string[0])]
    [InlineData("""{"a":1,"a":""", new string[0])]
    public void Finds_every_repeated_name_with_its_pointer(string json, string[] expected) =>
        Assert.Equal(expected, DuplicateKeys.Find(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void A_node_parsed_from_a_request_still_shows_its_repeated_names()
    {
        var node = JsonNode.Parse("""{"name":"t","arguments":{"email":"x","email":"y"}}""")!;
        Assert.Equal(["/arguments/email"], DuplicateKeys.Find(node));
    }

    [Fact]
    public void Reports_at_most_the_limit()
    {
        var json = "{" + string.Join(",", Enumerable.Repeat("\"k\":1", 1000)) + "}";
        Assert.Equal(16, DuplicateKeys.Find(Encoding.UTF8.GetBytes(json)).Count);
    }
}
