using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Results;
using ControlPlane.Guard.Schemas;
using ControlPlane.Policy;
using CsCheck;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Security;

/// <summary>
/// Adversarial generators for the three places that decide what crosses a boundary: projection (never a
/// field outside the allowlist, at any depth), the schema validator (keys that only look right, numbers that
/// are not numbers) and the redactor (secrets hidden by case, escapes and nesting). They extend
/// SchemaPropertyTests and RedactorPropertyTests, which cover random shapes; these aim at the look-alikes.
/// </summary>
public sealed class AdversarialPropertyTests
{
    /// <summary>Keys an allowlist names, and data keys that only resemble them: case, Cyrillic, zero-width, a slash or tilde inside.</summary>
    private static readonly string[] PointerKeys = ["a", "b", "id"];

    private static readonly string[] DataKeys = ["a", "b", "id", "A", "ID", "Id", "\u0430", "\u0456d", "id\u200b", "a/b", "a~1b", "~0", "b/", "_truncated"];

    private static readonly ResultShaper Shaper = new(new Redactor(), Options.Create(new ResultOptions()));

    private sealed record Tree(string Json);

    /// <summary>Random JSON whose every scalar is a unique marker, so a leaked value can be traced to its path.</summary>
    private static Gen<Node> NodeGen(int depth) => depth == 0
        ? Gen.Const<Node>(new Leaf())
        : Gen.Frequency(
            (2, Gen.Const<Node>(new Leaf())),
            (3, Gen.Select(Gen.OneOf(DataKeys), NodeGen(depth - 1)).Array[0, 4].Select(kv => (Node)new Obj([.. kv]))),
            (2, NodeGen(depth - 1).Array[0, 3].Select(items => (Node)new Arr(items))));

    private abstract record Node;

    private sealed record Leaf : Node;

    private sealed record Obj((string Key, Node Value)[] Members) : Node;

    private sealed record Arr(Node[] Items) : Node;

    private static readonly Gen<string[]> Allowlist = Gen.OneOf(PointerKeys.Append("*").ToArray()).Array[1, 3]
        .Select(segments => "/" + string.Join('/', segments)).Array[1, 3];

    [Fact]
    public void Projection_never_lets_a_value_outside_the_allowlist_through_at_any_depth()
    {
        Gen.Select(NodeGen(4), Allowlist, Gen.Bool).Sample((tree, fields, escapeKeys) =>
        {
            var allowed = fields.Select(f => f[1..].Split('/')).ToArray();
            var counter = 0;
            var leaks = new List<string>();
            var json = new StringBuilder();
            Write(tree, [], json, allowed, leaks, ref counter, escapeKeys);

            var result = new CallToolResult
            {
                StructuredContent = JsonDocument.Parse(json.ToString()).RootElement.Clone(),
                Content = [new TextContentBlock { Text = json.ToString() }],
            };
            var shaped = Shaper.Shape(result, new ProjectionSetting("srv", "tool", fields, null, null, false, "test", "test", DateTimeOffset.UtcNow));
            var output = (shaped.StructuredContent?.GetRawText() ?? "") + string.Concat(shaped.Content.OfType<TextContentBlock>().Select(t => t.Text));
            foreach (var leak in leaks)
            {
                if (output.Contains(leak, StringComparison.Ordinal)) return false;
            }

            return true;
        }, iter: 2000, print: t => $"fields {string.Join(",", t.Item2)} escaped {t.Item3}");
    }

    /// <summary>
    /// Writes the tree as JSON text. A scalar is "keep" when some allowlist pointer could reach it (any
    /// segment equal, or '*'), otherwise "leak": those must never appear in the shaped result. Keys are
    /// sometimes written with every character \u-escaped, which parses to the same key.
    /// </summary>
    private static void Write(Node node, List<string> path, StringBuilder json, string[][] allowed, List<string> leaks, ref int counter, bool escapeKeys)
    {
        switch (node)
        {
            case Leaf:
                var reachable = allowed.Any(f => f.Length <= path.Count && f.Select((s, i) => s == "*" || s == path[i]).All(x => x));
                var marker = (reachable ? "keep" : "leak") + "-" + counter++ + "-v";
                if (!reachable) leaks.Add(marker);
                json.Append('"').Append(marker).Append('"');
                break;
            case Obj obj:
                json.Append('{');
                var seen = new HashSet<string>(StringComparer.Ordinal);
                var first = true;
                foreach (var (key, value) in obj.Members)
                {
                    if (!seen.Add(key)) continue; // duplicate keys are the corpus's business; here every path is unique
                    if (!first) json.Append(',');
                    first = false;
                    json.Append('"').Append(escapeKeys ? string.Concat(key.Select(c => $"\\u{(int)c:x4}")) : JsonEncodedText.Encode(key).ToString()).Append("\":");
                    path.Add(key);
                    Write(value, path, json, allowed, leaks, ref counter, escapeKeys);
                    path.RemoveAt(path.Count - 1);
                }

                json.Append('}');
                break;
            case Arr arr:
                json.Append('[');
                for (var i = 0; i < arr.Items.Length; i++)
                {
                    if (i > 0) json.Append(',');
                    path.Add(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    Write(arr.Items[i], path, json, allowed, leaks, ref counter, escapeKeys);
                    path.RemoveAt(path.Count - 1);
                }

                json.Append(']');
                break;
        }
    }

    private static readonly ArgumentSchema Refund = ArgumentSchema.Compile(JsonDocument.Parse("""
        {"type":"object","properties":{"customer_id":{"type":"string","pattern":"^cust_[A-Z0-9]{12}$"},
         "amount_cents":{"type":"integer","minimum":1,"maximum":1000000},"reason":{"type":"string","enum":["duplicate","fraud"]}},
         "required":["customer_id","amount_cents","reason"],"additionalProperties":false}
        """).RootElement);

    /// <summary>Each twists one field of a valid call into something that only looks valid.</summary>
    private static readonly (string Name, Func<string, string> Twist)[] Twists =
    [
        ("key in upper case", k => $"\"{k.ToUpperInvariant()}\""),
        ("key in title case", k => $"\"{char.ToUpperInvariant(k[0])}{k[1..]}\""),
        ("Cyrillic look-alike in the key", k => $"\"{k.Replace('a', '\u0430').Replace('o', '\u043e').Replace('c', '\u0441')}\""),
        ("zero-width space in the key", k => $"\"{k}\u200b\""),
        ("trailing space in the key", k => $"\"{k} \""),
        ("NUL in the key", k => $"\"{k}\\u0000\""),
    ];

    private static readonly string[] NotANumber = ["\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1e3\"", "1e400", "-1e400", "0.5", "1.0e-400", "null", "[]", "{}", "true", "\"\"", "1000001", "0", "-0"];

    private static readonly string[] NotAnId = ["\"cust_demo00000001\"", "\"cust_DEMO00000001\\n\"", "\"cust_DEMO0000000１\"", "\"cust_DEMO00000001\\u0000\"", "\"\u0441ust_DEMO00000001\"", "\"cust_DEMO000000011\"", "\" cust_DEMO00000001\""];

    [Fact]
    public void Look_alike_keys_and_number_impostors_are_always_refused()
    {
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, Twists.Length - 1], Gen.OneOf(NotANumber), Gen.OneOf(NotAnId), Gen.Int[0, 2]).Sample((field, twist, number, id, mode) =>
        {
            var keys = new[] { "customer_id", "amount_cents", "reason" };
            var values = new[] { "\"cust_DEMO00000001\"", "4200", "\"fraud\"" };
            string Json() => "{" + string.Join(",", keys.Select((k, i) => $"{(k.StartsWith('"') ? k : "\"" + k + "\"")}:{values[i]}")) + "}";
            using (var valid = JsonDocument.Parse(Json())) Assert.Empty(Refund.Validate(valid.RootElement));

            switch (mode)
            {
                case 0: keys[field] = Twists[twist].Twist(keys[field]); break;
                case 1: values[1] = number; break;
                default: values[0] = id; break;
            }

            using var twisted = JsonDocument.Parse(Json());
            return Refund.Validate(twisted.RootElement).Count > 0;
        }, iter: 3000);
    }

    private static readonly Redactor Redactor = new();

    private static readonly string[] SecretKeys = ["password", "PASSWORD", "Password", "client_Secret", "X-API-KEY", "apiKey", "RefreshToken", "PrivateKey", "AUTHORIZATION", "db_passwd"];

    private static readonly string[] PiiValues = ["ada@example.com", "ADA@EXAMPLE.COM", "4111 1111 1111 1111", "4111-1111-1111-1111", "sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz012345",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"];

    [Fact]
    public void Secrets_hidden_by_key_case_escapes_and_nesting_never_survive_redaction()
    {
        Gen.Select(Gen.OneOf(SecretKeys), Gen.OneOf(PiiValues), Gen.Int[0, 6], Gen.Bool, Gen.Int[0, 2]).Sample((secretKey, pii, depth, escape, placement) =>
        {
            const string hidden = "s3cr3t-Value-9f8e7d";
            var piiText = escape ? string.Concat(pii.Select(c => c is '@' or ' ' or '-' ? $"\\u{(int)c:x4}" : c.ToString())) : pii;
            var inner = placement switch
            {
                0 => $$"""{"{{secretKey}}":"{{hidden}}","note":"{{piiText}}"}""",
                1 => $$"""[{"{{secretKey}}":"{{hidden}}"},"contact {{piiText}} today"]""",
                _ => "{\"items\":[{\"meta\":{\"" + secretKey + "\":[\"" + hidden + "\"]}},{\"x\":\"" + piiText + "\"}]}",
            };
            for (var i = 0; i < depth; i++) inner = i % 2 == 0 ? $"[{inner}]" : $$"""{"level{{i}}":{{inner}}}""";

            using var document = JsonDocument.Parse(inner);
            var redacted = Redactor.Redact(document.RootElement).GetRawText();
            var unescaped = JsonDocument.Parse(redacted).RootElement.ToString();
            return !redacted.Contains(hidden, StringComparison.Ordinal) && !unescaped.Contains(pii, StringComparison.OrdinalIgnoreCase)
                && !redacted.Contains(pii, StringComparison.OrdinalIgnoreCase);
        }, iter: 3000);
    }
}
