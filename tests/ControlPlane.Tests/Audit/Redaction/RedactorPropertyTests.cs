using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Redaction;
using CsCheck;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Audit.Redaction;

/// <summary>
/// Random JSON, written as text so it can hold what a serializer would never produce (escaped lone surrogates,
/// duplicate keys, odd number spellings, deep nesting, huge strings), with known secrets planted in string
/// values. Whatever the shape, the redactor must not throw, must produce valid JSON, and no planted secret may
/// survive.
/// </summary>
public sealed class RedactorPropertyTests(ITestOutputHelper output)
{
    private static readonly Redactor Redactor = new();

    private static readonly Gen<string> CardDigits = Gen.Select(Gen.Int[0, 9].Array[14], Gen.Int[0, 2]).Select((digits, style) =>
    {
        var body = "4" + string.Concat(digits);
        var card = body + LuhnDigit(body);
        var separator = style switch { 0 => "", 1 => " ", _ => "-" };
        return string.Join(separator, card.Chunk(4).Select(c => new string(c)));
    });

    private static readonly Gen<string> ApiKey = Gen.Char["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"].Array[20, 60]
        .Select(tail => "sk-" + new string(tail));

    private static readonly Gen<string> Planted = Gen.OneOf(
        Gen.OneOf("alice.smith@example.com", "x_y+z@sub.domain.org", "ADA@EXAMPLE.CO.UK"),
        Gen.OneOf("4111 1111 1111 1111", "5555555555554444", "3782-822463-10005", "6011 0009 9013 9424"),
        CardDigits,
        Gen.OneOf("sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz012345"),
        ApiKey);

    private static readonly string[] NoSecrets = [];

    /// <summary>Text around secrets: printable, any UTF-16 (lone surrogates included), number-ish, known tricky values, rarely huge.</summary>
    private static readonly Gen<string> Noise = Gen.Frequency(
        (80, Gen.String[0, 12]),
        (40, Gen.Char.Array[0, 12].Select(c => new string(c))),
        (40, Gen.Char["0123456789 -.+()/@_"].Array[0, 12].Select(c => new string(c))),
        (20, Gen.OneOf("2026-11-25", "cust_DEMO00000001", "ord_2024_000123", "10.4.2", "Bearer", "eyJ", "\\", "\"", "\n", "é😀")),
        (1, Gen.Int[1_000, 100_000].Select(n => new string('7', n))));

    /// <summary>A string value: noise, sometimes with a secret planted between spaces. Each value carries its secrets.</summary>
    private static readonly Gen<(string Json, string[] Secrets)> StringValue = Gen.Frequency(
        (3, Noise.Select(n => (Quote(n), NoSecrets))),
        (1, Gen.Select(Noise, Planted, Noise).Select((before, secret, after) => (Quote(before + " " + secret + " " + after), new[] { secret }))));

    private static readonly Gen<(string Json, string[] Secrets)> Scalar = Gen.Frequency(
        (4, StringValue),
        (1, Gen.OneOf("null", "true", "false", "0", "-0", "1250", "1.50e3", "1E+400", "-12.5e-3", "123456789012345678901234567890", "4111111111111111")
            .Select(s => (s, s == "4111111111111111" ? new[] { s } : NoSecrets))),
        (1, Gen.Long.Select(l => (l.ToString(CultureInfo.InvariantCulture), NoSecrets))));

    private static Gen<(string Json, string[] Secrets)> Value(int depth) => depth <= 0 ? Scalar : Gen.Frequency(
        (5, Scalar),
        (1, Value(depth - 1).Array[0, 5].Select(items => ("[ " + string.Join(" ,", items.Select(i => i.Json)) + "]", items.SelectMany(i => i.Secrets).ToArray()))),
        (1, Gen.Select(Gen.OneOf(Gen.String[0, 8], Gen.OneOf("password", "a", "a", "Authorization", "items", "")), Value(depth - 1)).Array[0, 5]
            .Select(members => (
                "{" + string.Join(",", members.Select(m => Quote(m.Item1) + " : " + m.Item2.Json)) + "}",
                members.SelectMany(m => m.Item2.Secrets).ToArray()))));

    /// <summary>A value wrapped in up to 90 arrays or objects: past <see cref="Redactor.MaxDepth"/> sometimes.</summary>
    private static readonly Gen<(string Json, string[] Secrets)> Document = Gen.Select(Value(4), Gen.Int[0, 90], Gen.Bool).Select((value, wrap, objects) =>
    {
        var json = value.Json;
        for (var i = 0; i < wrap; i++) json = objects ? "{\"k\":" + json + "}" : "[" + json + "]";
        return (json, value.Secrets);
    });

    [Fact]
    public void Random_json_never_throws_stays_valid_and_never_leaks_a_planted_secret()
    {
        Document.Sample(doc =>
        {
            using var input = JsonDocument.Parse(doc.Json, new JsonDocumentOptions { MaxDepth = 256 });
            var redacted = Redactor.Redact(input.RootElement);
            var text = redacted.GetRawText();
            using var reparsed = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 256 });

            var arguments = new Dictionary<string, JsonElement> { ["value"] = input.RootElement, ["other"] = input.RootElement };
            var canonical = Redactor.RedactToCanonicalJson(arguments, "server/tool");
            using var canonicalDocument = JsonDocument.Parse(canonical, new JsonDocumentOptions { MaxDepth = 256 });
            Assert.Equal(canonical, CanonicalJson.Serialize(canonicalDocument.RootElement));

            foreach (var secret in doc.Secrets)
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
                Assert.DoesNotContain(secret, canonical, StringComparison.Ordinal);
            }
        }, iter: 3000, threads: 1);
    }

    [Fact]
    public void Random_text_never_throws_and_never_leaks_a_planted_secret()
    {
        Gen.Select(Noise, Planted, Noise).Sample((before, secret, after) =>
        {
            var redacted = Redactor.RedactText(before + " " + secret + " " + after);
            Assert.DoesNotContain(secret, redacted, StringComparison.Ordinal);
        }, iter: 5000, threads: 1);

        Gen.Char.Array[0, 200].Select(c => new string(c)).Sample(text => Redactor.RedactText(text), iter: 5000, threads: 1);
    }

    [Fact]
    public void Huge_adversarial_strings_take_linear_time()
    {
        const int Size = 1 << 20;
        string[] inputs =
        [
            new('7', Size),
            new('@', Size),
            string.Concat(Enumerable.Repeat("a@", Size / 2)),
            new string('a', Size - 1) + "@",
            string.Concat(Enumerable.Repeat("1 ", Size / 2)),
            string.Concat(Enumerable.Repeat("12 ", Size / 3)),
            string.Concat(Enumerable.Repeat("4111-", Size / 5)),
            string.Concat(Enumerable.Repeat("+1 (", Size / 4)),
            string.Concat(Enumerable.Repeat("sk-", Size / 3)),
            "sk-" + new string('a', Size),
            string.Concat(Enumerable.Repeat("eyJ.", Size / 4)),
            "Bearer " + new string('.', Size),
            string.Concat(Enumerable.Repeat("a.", Size / 2)) + "@",
            "x@" + string.Concat(Enumerable.Repeat("a.", Size / 2)),
        ];

        // Warm up the pattern so its one-off construction is not counted.
        Redactor.RedactText("a@b.co sk-12345678901234567890 +44 20 7946 0958");

        foreach (var input in inputs)
        {
            var element = JsonSerializer.SerializeToElement(input);
            var asText = Fastest(() => Assert.NotNull(Redactor.RedactText(input)));
            var asJson = Fastest(() => Assert.Equal(JsonValueKind.String, Redactor.Redact(element).ValueKind));
            var label = input[..12].Replace("\n", " ", StringComparison.Ordinal) + "…";
            output.WriteLine($"{label,-14} text {asText.TotalMilliseconds,7:F1} ms   json {asJson.TotalMilliseconds,7:F1} ms");
            // A backtracking blowup on 1 MiB takes minutes; 5 s leaves a loaded 2-core runner room without hiding one.
            Assert.True(asText < TimeSpan.FromSeconds(5), $"{label} took {asText.TotalMilliseconds} ms as text");
            Assert.True(asJson < TimeSpan.FromSeconds(5), $"{label} took {asJson.TotalMilliseconds} ms as JSON");
        }
    }

    /// <summary>The best of three runs: a blowup shows in every run, a garbage collection or a busy machine in one.</summary>
    private static TimeSpan Fastest(Action action)
    {
        var best = TimeSpan.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            if (watch.Elapsed < best) best = watch.Elapsed;
        }

        return best;
    }

    [Fact]
    public void Is_thread_safe()
    {
        var redactor = new Redactor(new RedactionOptions { Pointers = new() { ["s/t"] = ["/items/*/note"] } });
        var args = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(
            """{"items":[{"note":"n","email":"ada@example.com"}],"card":"4111 1111 1111 1111","id":"cust_DEMO00000001"}""")!;
        var expected = redactor.RedactToCanonicalJson(args, "s/t");
        Assert.Equal("""{"card":"[REDACTED:card]","id":"cust_DEMO00000001","items":[{"email":"[REDACTED:email]","note":"[REDACTED]"}]}""", expected);
        Parallel.For(0, 2000, _ => Assert.Equal(expected, redactor.RedactToCanonicalJson(args, "s/t")));
    }

    /// <summary>A JSON string literal that escapes every surrogate, so lone ones survive as <c>\udXXX</c>.</summary>
    private static string Quote(string value)
    {
        var builder = new StringBuilder(value.Length + 2).Append('"');
        foreach (var c in value)
        {
            if (c is '"' or '\\') builder.Append('\\').Append(c);
            else if (c < ' ' || char.IsSurrogate(c)) builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            else builder.Append(c);
        }

        return builder.Append('"').ToString();
    }

    private static char LuhnDigit(string body)
    {
        var sum = 0;
        for (var i = 0; i < body.Length; i++)
        {
            // The check digit will be rightmost, so the body's last digit is doubled.
            var d = body[body.Length - 1 - i] - '0';
            if (i % 2 == 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
            sum += d;
        }

        return (char)('0' + (10 - sum % 10) % 10);
    }
}
