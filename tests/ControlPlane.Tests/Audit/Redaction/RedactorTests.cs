using System.Text.Json;
using ControlPlane.Audit.Redaction;

namespace ControlPlane.Tests.Audit.Redaction;

public sealed class RedactorTests
{
    private static readonly Redactor Default = new();

    private static JsonElement Json(string json) => JsonElement.Parse(json);

    private static Dictionary<string, JsonElement> Args(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json)!;

    [Theory]
    [InlineData("ada.lovelace@example.com", "[REDACTED:email]")]
    [InlineData("Contact: bob.smith+billing@mail.example.co.uk.", "Contact: [REDACTED:email].")]
    [InlineData("mailto:renée@exämple.de", "mailto:[REDACTED:email]")]
    [InlineData("+44 20 7946 0958", "[REDACTED:phone]")]
    [InlineData("call +1 (415) 555-0132 after 5pm", "call [REDACTED:phone] after 5pm")]
    [InlineData("+1-202-555-0173", "[REDACTED:phone]")]
    [InlineData("(415) 555-0132", "[REDACTED:phone]")]
    [InlineData("415-555-0132", "[REDACTED:phone]")]
    [InlineData("415.555.0132", "[REDACTED:phone]")]
    [InlineData("1-800-555-0199", "[REDACTED:phone]")]
    [InlineData("landline 020 7946 0958, mobile 07700 900123", "landline [REDACTED:phone], mobile [REDACTED:phone]")]
    [InlineData("+33 1 23 45 67 89", "[REDACTED:phone]")]
    [InlineData("01.23.45.67.89", "[REDACTED:phone]")]
    [InlineData("tel:+4915112345678", "tel:[REDACTED:phone]")]
    [InlineData("0049 151 12345678", "[REDACTED:phone]")]
    [InlineData("07700900123", "[REDACTED:phone]")]
    [InlineData("4111 1111 1111 1111", "[REDACTED:card]")]
    [InlineData("4111-1111-1111-1111", "[REDACTED:card]")]
    [InlineData("card 4111111111111111 exp 12/27", "card [REDACTED:card] exp 12/27")]
    [InlineData("5555555555554444", "[REDACTED:card]")]
    [InlineData("Amex 3782 822463 10005.", "Amex [REDACTED:card].")]
    [InlineData("2223 0031 2200 3222", "[REDACTED:card]")]
    [InlineData("6011-0009-9013-9424", "[REDACTED:card]")]
    [InlineData("Authorization: Bearer abc.def", "Authorization: [REDACTED:token]")]
    [InlineData("bearer 0a1b2c3d4e5f", "[REDACTED:token]")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLWJ5dGVz", "[REDACTED:token]")]
    [InlineData("key=AKIAIOSFODNN7EXAMPLE;", "key=[REDACTED:token];")]
    [InlineData("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[REDACTED:token]")]
    [InlineData("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV", "[REDACTED:token]")]
    [InlineData("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx ok", "slack [REDACTED:token] ok")]
    [InlineData("xoxp-123456789012-1234567890123-1234567890123-abcdef0123456789abcdef0123456789", "[REDACTED:token]")]
    [InlineData("OPENAI_KEY sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz012345", "OPENAI_KEY [REDACTED:token]")]
    [InlineData("sk_live_51H8abcdEFGHijklMNOPqrstUV", "[REDACTED:token]")]
    [InlineData("pk_live_51H8abcdEFGHijklMNOPqrstUV", "[REDACTED:token]")]
    [InlineData("token cpt_a1b2c3d4e5f60718_Q2xhdWRlIGlzIGEgc2VjcmV0IHRva2VuIGZvciB0ZXN0cw ok", "token [REDACTED:token] ok")]
    [InlineData("cpo_admin_Q2xhdWRlIGlzIGEgc2VjcmV0IHRva2VuIGZvciB0ZXN0cw", "[REDACTED:token]")]
    [InlineData("confirm with cpc_Q2xhdWRlIGlzIGEgc2VjcmV0IHRva2Vu", "confirm with [REDACTED:token]")]
    [InlineData("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----", "[REDACTED:token]")]
    public void Detects_sensitive_spans_in_text(string input, string expected)
    {
        Assert.Equal(expected, Default.RedactText(input));
        Assert.Equal(expected, Default.Redact(JsonSerializer.SerializeToElement(input)).GetString());
    }

    [Theory]
    [InlineData("2026-11-25")]
    [InlineData("2026-11-25T10:30:00Z")]
    [InlineData("2026-11-25 10:30")]
    [InlineData("25.11.2026")]
    [InlineData("11/25/2026")]
    [InlineData("cust_DEMO00000001")]
    [InlineData("ord_2024_000123")]
    [InlineData("ord_DEMO00000001")]
    [InlineData("1250")]
    [InlineData("amount 1250 GBP, 3 seats, 42 days")]
    [InlineData("550e8400-e29b-41d4-a716-446655440000")]
    [InlineData("12345678-1234-1234-1234-123456789012")]
    [InlineData("10.4.2")]
    [InlineData("version 10.4.2 on node 192.168.100.200")]
    [InlineData("1732550400")]
    [InlineData("20261125103000")]
    [InlineData("4111 1111 1111 1112")]
    [InlineData("4111111111111112")]
    [InlineData("1234567812345678")]
    [InlineData("season 2024-2025, 2024/2025")]
    [InlineData("12 500 000 and 12.500.000 and 1 250 000")]
    [InlineData("scores 10 20 30 40 50")]
    [InlineData("12500000.00")]
    [InlineData("SKU-SEAT-ADDON x3 at 4300")]
    [InlineData("Bearer bonds are out of fashion.")]
    [InlineData("the bearer of this note")]
    [InlineData("sk-learn is a library; task-tracker and risk-free")]
    [InlineData("lodash@4.17.21 and @scope/pkg@1.0.0")]
    [InlineData("Asia/Tokyo")]
    [InlineData("12 Ockham Park Row, W1U 8QZ")]
    [InlineData("**** **** **** 4242")]
    [InlineData("sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    [InlineData("")]
    public void Leaves_ordinary_values_alone(string input)
    {
        Assert.Same(input, Default.RedactText(input));
        var element = JsonSerializer.SerializeToElement(input);
        Assert.Equal(input, Default.Redact(element).GetString());
    }

    [Fact]
    public void Redacts_nested_arguments_and_free_text_notes()
    {
        var args = Args("""
            {
              "customer_id": "cust_DEMO00000001",
              "order_id": "ord_2024_000123",
              "amount_cents": 1250,
              "reason": "duplicate",
              "requested_on": "2026-11-25",
              "request_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2",
              "client": { "version": "10.4.2", "seats": 3 },
              "contact": {
                "email": "ada.lovelace@example.com",
                "phones": ["+44 20 7946 0958", "(415) 555-0132"],
                "card": 4111111111111111
              },
              "notes": "Customer ada@example.org called from 07700 900123 about card 4111-1111-1111-1111; invalid test number 4111 1111 1111 1112 stays.",
              "headers": { "Authorization": "Bearer abc.def", "X-Api-Key": "k", "Accept": "application/json" }
            }
            """);

        var redacted = JsonElement.Parse(Default.RedactToCanonicalJson(args, "support-desk/create_refund"));

        Assert.Equal("cust_DEMO00000001", redacted.GetProperty("customer_id").GetString());
        Assert.Equal("ord_2024_000123", redacted.GetProperty("order_id").GetString());
        Assert.Equal(1250, redacted.GetProperty("amount_cents").GetInt32());
        Assert.Equal("2026-11-25", redacted.GetProperty("requested_on").GetString());
        Assert.Equal("7d444840-9dc0-11d1-b245-5ffdce74fad2", redacted.GetProperty("request_id").GetString());
        Assert.Equal("10.4.2", redacted.GetProperty("client").GetProperty("version").GetString());
        Assert.Equal(3, redacted.GetProperty("client").GetProperty("seats").GetInt32());

        var contact = redacted.GetProperty("contact");
        Assert.Equal("[REDACTED:email]", contact.GetProperty("email").GetString());
        Assert.Equal(["[REDACTED:phone]", "[REDACTED:phone]"], contact.GetProperty("phones").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal("[REDACTED:card]", contact.GetProperty("card").GetString());

        Assert.Equal(
            "Customer [REDACTED:email] called from [REDACTED:phone] about card [REDACTED:card]; invalid test number 4111 1111 1111 1112 stays.",
            redacted.GetProperty("notes").GetString());

        var headers = redacted.GetProperty("headers");
        Assert.Equal("[REDACTED:secret]", headers.GetProperty("Authorization").GetString());
        Assert.Equal("[REDACTED:secret]", headers.GetProperty("X-Api-Key").GetString());
        Assert.Equal("application/json", headers.GetProperty("Accept").GetString());
    }

    [Theory]
    [InlineData("password")]
    [InlineData("Password")]
    [InlineData("passwd")]
    [InlineData("db_password")]
    [InlineData("secret")]
    [InlineData("client_secret")]
    [InlineData("clientSecret")]
    [InlineData("token")]
    [InlineData("access_token")]
    [InlineData("refresh-token")]
    [InlineData("RefreshToken")]
    [InlineData("id_token")]
    [InlineData("api_key")]
    [InlineData("apiKey")]
    [InlineData("API-KEY")]
    [InlineData("x-api-key")]
    [InlineData("apikey")]
    [InlineData("authorization")]
    [InlineData("Proxy-Authorization")]
    [InlineData("private_key")]
    [InlineData("privateKey")]
    [InlineData("aws_secret_key")]
    public void Secret_named_properties_are_replaced_whole_at_any_depth(string name)
    {
        var value = Json($$$"""{"a":[{"b":{"{{{name}}}":"hunter2","keep":"x"}}],"{{{name}}}":{"nested":[1,2]}}""");
        var redacted = Default.Redact(value);
        Assert.Equal("[REDACTED:secret]", redacted.GetProperty(name).GetString());
        var inner = redacted.GetProperty("a")[0].GetProperty("b");
        Assert.Equal("[REDACTED:secret]", inner.GetProperty(name).GetString());
        Assert.Equal("x", inner.GetProperty("keep").GetString());
    }

    [Theory]
    [InlineData("max_tokens", 1024)]
    [InlineData("token_count", 7)]
    [InlineData("password_updated_at", "2024-11-05T18:02:09Z")]
    [InlineData("secret_santa_budget", 20)]
    [InlineData("token_id", "tok_42")]
    public void Names_that_merely_contain_a_secret_word_are_kept(string name, object value)
    {
        var element = JsonSerializer.SerializeToElement(new Dictionary<string, object> { [name] = value });
        var redacted = Default.Redact(element);
        Assert.Equal(element.GetProperty(name).GetRawText(), redacted.GetProperty(name).GetRawText());
    }

    [Fact]
    public void A_null_secret_stays_null()
    {
        Assert.Equal(JsonValueKind.Null, Default.Redact(Json("""{"password":null}""")).GetProperty("password").ValueKind);
    }

    [Fact]
    public void Pointer_rules_redact_by_path_with_wildcards_and_escapes()
    {
        var redactor = new Redactor(new RedactionOptions
        {
            Pointers = new()
            {
                ["support-desk/update_customer"] =
                [
                    "/address",
                    "/items/*/note",
                    "/a~1b/c~0d",
                    "/*/dob",
                    "/list/1",
                    "/missing/path",
                ],
            },
        });

        var value = Json("""
            {
              "address": { "line1": "12 Ockham Park Row", "postcode": "W1U 8QZ" },
              "items": [ { "note": "gift", "sku": "A" }, { "note": 5, "sku": "B" } ],
              "a/b": { "c~d": "x", "c~0d": "kept", "cd": "kept" },
              "person": { "dob": "1815-12-10", "name": "Ada" },
              "list": [ "zero", "one", "two" ],
              "other": "kept"
            }
            """);

        var redacted = redactor.Redact(value, "support-desk/update_customer");
        Assert.Equal("[REDACTED]", redacted.GetProperty("address").GetString());
        Assert.Equal("[REDACTED]", redacted.GetProperty("items")[0].GetProperty("note").GetString());
        Assert.Equal("[REDACTED]", redacted.GetProperty("items")[1].GetProperty("note").GetString());
        Assert.Equal("B", redacted.GetProperty("items")[1].GetProperty("sku").GetString());
        Assert.Equal("[REDACTED]", redacted.GetProperty("a/b").GetProperty("c~d").GetString());
        Assert.Equal("kept", redacted.GetProperty("a/b").GetProperty("c~0d").GetString());
        Assert.Equal("kept", redacted.GetProperty("a/b").GetProperty("cd").GetString());
        Assert.Equal("[REDACTED]", redacted.GetProperty("person").GetProperty("dob").GetString());
        Assert.Equal("Ada", redacted.GetProperty("person").GetProperty("name").GetString());
        Assert.Equal(["zero", "[REDACTED]", "two"], redacted.GetProperty("list").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("kept", redacted.GetProperty("other").GetString());

        // Another tool, or no tool, gets no pointer rules.
        Assert.Equal("gift", redactor.Redact(value, "support-desk/other").GetProperty("items")[0].GetProperty("note").GetString());
        Assert.Equal("gift", redactor.Redact(value).GetProperty("items")[0].GetProperty("note").GetString());

        var canonical = redactor.RedactToCanonicalJson(Args(value.GetRawText()), "support-desk/update_customer");
        Assert.Contains("\"address\":\"[REDACTED]\"", canonical, StringComparison.Ordinal);
        Assert.Contains("\"list\":[\"zero\",\"[REDACTED]\",\"two\"]", canonical, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wildcard_and_a_literal_on_the_same_step_both_apply()
    {
        var redactor = new Redactor(new RedactionOptions { Pointers = new() { ["s/t"] = ["/*/x", "/a/y"] } });
        var redacted = redactor.Redact(Json("""{"a":{"x":1,"y":2,"z":3},"b":{"x":4,"y":5}}"""), "s/t");
        Assert.Equal("""{"a":{"x":"[REDACTED]","y":"[REDACTED]","z":3},"b":{"x":"[REDACTED]","y":5}}""", redacted.GetRawText());
    }

    [Fact]
    public void The_empty_pointer_redacts_everything()
    {
        var redactor = new Redactor(new RedactionOptions { Pointers = new() { ["s/t"] = [""] } });
        Assert.Equal("[REDACTED]", redactor.Redact(Json("""{"a":1}"""), "s/t").GetString());
        Assert.Equal("\"[REDACTED]\"", redactor.RedactToCanonicalJson(Args("""{"a":1}"""), "s/t"));
    }

    [Theory]
    [InlineData("no-slash")]
    [InlineData("/a~2b")]
    [InlineData("/a~")]
    public void Invalid_pointers_fail_at_configuration(string pointer)
    {
        Assert.Throws<ArgumentException>(() => new Redactor(new RedactionOptions { Pointers = new() { ["s/t"] = [pointer] } }));
    }

    [Fact]
    public void Pii_detection_can_be_turned_off_but_secrets_are_still_removed()
    {
        var redactor = new Redactor(new RedactionOptions { DetectPii = false });
        Assert.Equal("ada@example.com 4111 1111 1111 1111 +44 20 7946 0958 [REDACTED:token]",
            redactor.RedactText("ada@example.com 4111 1111 1111 1111 +44 20 7946 0958 sk-proj-Ab3dEf6hIj9kLmN0pQrStUvWxYz012345"));
        Assert.Equal("[REDACTED:secret]", redactor.Redact(Json("""{"password":"p"}""")).GetProperty("password").GetString());
    }

    [Fact]
    public void Values_nested_beyond_the_maximum_depth_are_replaced()
    {
        var deep = "\"ada@example.com\"";
        for (var i = 0; i < Redactor.MaxDepth + 10; i++) deep = "{\"k\":" + deep + "}";
        using var document = JsonDocument.Parse(deep, new JsonDocumentOptions { MaxDepth = 1000 });

        var redacted = Default.Redact(document.RootElement);
        var node = redacted;
        var levels = 0;
        while (node.ValueKind == JsonValueKind.Object)
        {
            node = node.GetProperty("k");
            levels++;
        }

        Assert.Equal(Redactor.MaxDepth, levels);
        Assert.Equal("[REDACTED:too-deep]", node.GetString());

        var canonical = Default.RedactToCanonicalJson(new Dictionary<string, JsonElement> { ["deep"] = document.RootElement });
        Assert.Contains("[REDACTED:too-deep]", canonical, StringComparison.Ordinal);
        Assert.DoesNotContain("ada@", canonical, StringComparison.Ordinal);
    }

    [Fact]
    public void Unchanged_values_are_returned_without_a_copy()
    {
        using var document = JsonDocument.Parse("""{"customer_id":"cust_DEMO00000001","amount_cents":1250,"reason":"duplicate"}""");
        var redacted = Default.Redact(document.RootElement);
        Assert.Equal(document.RootElement.GetRawText(), redacted.GetRawText());
        // Same backing document: still readable only while the input is.
        Assert.True(JsonElement.DeepEquals(document.RootElement, redacted));
    }

    [Fact]
    public void Redacted_json_keeps_member_order_and_other_values()
    {
        var redacted = Default.Redact(Json("""{ "z": 1.50e3, "a": "x@example.com", "m": [true, null, "caf\u00e9 \ud83d\ude00"] }"""));
        Assert.Equal("""{"z":1.50e3,"a":"[REDACTED:email]","m":[true,null,"café 😀"]}""", redacted.GetRawText());
    }

    [Fact]
    public void Escaped_and_odd_strings_do_not_throw()
    {
        var odd = Json("""{"lone":"a\ud800b ada@example.com","quote":"say \"hi\" to bob@example.com\n","ctl":"\u0001"}""");
        var redacted = Default.Redact(odd);
        Assert.Equal("a\uFFFDb [REDACTED:email]", redacted.GetProperty("lone").GetString());
        Assert.Equal("say \"hi\" to [REDACTED:email]\n", redacted.GetProperty("quote").GetString());
        Assert.Equal("\u0001", redacted.GetProperty("ctl").GetString());

        byte[] bytes = [.. "{\"a\":\""u8, 0xC3, 0x28, .. " ada@example.com\"}"u8];
        using var invalidUtf8 = JsonDocument.Parse(bytes);
        Assert.Equal("\uFFFD( [REDACTED:email]", Default.Redact(invalidUtf8.RootElement).GetProperty("a").GetString());
        var args = new Dictionary<string, JsonElement> { ["a"] = invalidUtf8.RootElement.GetProperty("a") };
        Assert.Equal("{\"a\":\"\uFFFD( [REDACTED:email]\"}", Default.RedactToCanonicalJson(args));
    }

    [Fact]
    public void Default_and_null_inputs_are_handled()
    {
        Assert.Equal(JsonValueKind.Undefined, Default.Redact(default).ValueKind);
        Assert.Equal("{}", Default.RedactToCanonicalJson(null));
        Assert.Equal("{}", Default.RedactToCanonicalJson(new Dictionary<string, JsonElement>()));
        Assert.Equal("{\"a\":null}", Default.RedactToCanonicalJson(new Dictionary<string, JsonElement> { ["a"] = default }));
    }

    [Fact]
    public void Redact_to_canonical_json_sorts_and_compacts()
    {
        var canonical = Default.RedactToCanonicalJson(Args("""{ "b": { "y": 1, "x": [ 2, 1 ] }, "a": "ada@example.com", "B": 0 }"""));
        Assert.Equal("""{"B":0,"a":"[REDACTED:email]","b":{"x":[2,1],"y":1}}""", canonical);
    }
}
