using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Redaction;

namespace ControlPlane.Tests.Audit.Redaction;

public sealed class ArgumentHasherTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();

    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    [Fact]
    public void Is_hex_hmac_sha256_of_the_canonical_json()
    {
        var args = Args("""{ "reason": "duplicate", "amount_cents": 1250, "customer_id": "cust_DEMO00000001" }""");
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes(CanonicalJson.Serialize(args))));
        var hash = new ArgumentHasher(Key).Hash(args);
        Assert.Equal(expected, hash);
        Assert.Matches("^[0-9a-f]{64}$", hash);
    }

    [Fact]
    public void Equal_arguments_hash_equal_whatever_their_order_or_spacing()
    {
        var hasher = new ArgumentHasher(Key);
        var a = hasher.Hash(Args("""{"a":1,"b":{"x":[1,2],"y":"é"}}"""));
        var b = hasher.Hash(Args("""{ "b" : { "y" : "\u00e9", "x" : [ 1, 2 ] }, "a" : 1 }"""));
        Assert.Equal(a, b);
        Assert.Equal(a, hasher.Hash(JsonElement.Parse("""{"b":{"x":[1,2],"y":"é"},"a":1}""")));
        Assert.Equal(hasher.Hash((IDictionary<string, JsonElement>?)null), hasher.Hash(new Dictionary<string, JsonElement>()));
    }

    [Fact]
    public void A_different_key_gives_a_different_hash()
    {
        var args = Args("""{"a":1}""");
        var other = (byte[])Key.Clone();
        other[31] ^= 1;
        Assert.NotEqual(new ArgumentHasher(Key).Hash(args), new ArgumentHasher(other).Hash(args));
    }

    [Theory]
    [InlineData("""{"a":1,"b":"x"}""")]
    [InlineData("""{"a":2,"b":"x"}""")]
    [InlineData("""{"a":1.0,"b":"x"}""")]
    [InlineData("""{"a":"1","b":"x"}""")]
    [InlineData("""{"a":1,"b":"X"}""")]
    [InlineData("""{"a":1,"b":"x "}""")]
    [InlineData("""{"a":1,"c":"x"}""")]
    [InlineData("""{"a":1}""")]
    [InlineData("""{"a":1,"b":"x","c":null}""")]
    [InlineData("""{"a":[1],"b":"x"}""")]
    [InlineData("""{"a":1,"b":["x"]}""")]
    [InlineData("""{}""")]
    public void Any_change_changes_the_hash(string json)
    {
        var hasher = new ArgumentHasher(Key);
        var all = new[]
        {
            """{"a":1,"b":"x"}""", """{"a":2,"b":"x"}""", """{"a":1.0,"b":"x"}""", """{"a":"1","b":"x"}""", """{"a":1,"b":"X"}""",
            """{"a":1,"b":"x "}""", """{"a":1,"c":"x"}""", """{"a":1}""", """{"a":1,"b":"x","c":null}""", """{"a":[1],"b":"x"}""",
            """{"a":1,"b":["x"]}""", """{}""",
        };
        var mine = hasher.Hash(Args(json));
        foreach (var other in all.Where(o => o != json)) Assert.NotEqual(mine, hasher.Hash(Args(other)));
    }

    [Fact]
    public void Short_keys_are_refused_and_the_key_is_copied()
    {
        Assert.Throws<ArgumentException>(() => new ArgumentHasher(new byte[31]));
        Assert.Throws<ArgumentNullException>(() => new ArgumentHasher(null!));

        var key = (byte[])Key.Clone();
        var hasher = new ArgumentHasher(key);
        var before = hasher.Hash(Args("""{"a":1}"""));
        key[0] ^= 0xFF;
        Assert.Equal(before, hasher.Hash(Args("""{"a":1}""")));
    }

    [Fact]
    public void Is_thread_safe()
    {
        var hasher = new ArgumentHasher(Key);
        var args = Args("""{"customer_id":"cust_DEMO00000001","amount_cents":1250,"reason":"duplicate"}""");
        var expected = hasher.Hash(args);
        Parallel.For(0, 2000, _ => Assert.Equal(expected, hasher.Hash(args)));
    }
}
