using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Results;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.Policy;
using ControlPlane.SupportDesk;
using ControlPlane.Tests.SupportDesk;
using CsCheck;
using Json.Schema;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;
using Xunit.Abstractions;

namespace ControlPlane.Tests.Limits;

/// <summary>
/// The outputSchema advertised for shaped read results: unit tests of each derivation rule on hand-written schemas,
/// and properties over real support-desk schemas and results and over a richer generated schema, where every result
/// the real <see cref="ResultShaper"/> produces must validate against the derived schema (as official clients check).
/// </summary>
public sealed class AdvertisedOutputSchemaTests(AdvertisedOutputSchemaTests.SupportDeskResults desk, ITestOutputHelper output)
    : IClassFixture<AdvertisedOutputSchemaTests.SupportDeskResults>
{
    private static readonly Redactor Redactor = new();
    private static readonly Redactor SecretsOnly = new(new RedactionOptions { DetectPii = false });
    private static readonly EvaluationOptions Evaluation = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };

    // ---- Unit tests: one rule each, on hand-written schemas ----

    [Fact]
    public void Without_projection_or_redaction_the_declared_schema_is_advertised_as_it_is()
    {
        var declared = Schema("""{"type":"object","properties":{"a":{"type":"string","format":"email"}},"required":["a"]}""");
        Assert.Equal(declared.GetRawText(), AdvertisedOutputSchema.Derive(declared, null, null)!.Value.GetRawText());
        Assert.Null(AdvertisedOutputSchema.Derive(null, Projection(["/a"]), Redactor));
    }

    [Fact]
    public void A_schema_redaction_cannot_affect_is_advertised_unchanged()
    {
        var declared = Schema("""{"type":"object","properties":{"id":{"type":"string"},"ok":{"type":"boolean"},"band":{"enum":["low","high"]}},"required":["id"]}""");
        Assert.Equal(declared.GetRawText(), AdvertisedOutputSchema.Derive(declared, null, Redactor)!.Value.GetRawText());
    }

    [Fact]
    public void Redaction_drops_string_constraints_and_an_email_in_a_format_email_field_validates_once_redacted()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "contact":{"type":"string","format":"email"},
              "code":{"type":"string","pattern":"^[a-z@.]+$","minLength":3,"maxLength":20},
              "untyped":{"format":"email"}},
             "required":["contact","code"]}
            """);
        var derived = Derive(declared, null, Redactor);
        var contact = derived.GetProperty("properties").GetProperty("contact");
        Assert.False(contact.TryGetProperty("format", out _));
        var code = derived.GetProperty("properties").GetProperty("code");
        Assert.Equal("""{"type":"string"}""", code.GetRawText());
        Assert.Equal("{}", derived.GetProperty("properties").GetProperty("untyped").GetRawText());

        var shaped = Shape("""{"contact":"ada@example.com","code":"ada@example.com","untyped":"grace@example.org"}""", null);
        Assert.Equal("[REDACTED:email]", shaped.GetProperty("contact").GetString());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void Enum_and_const_stay_only_where_the_redactor_leaves_every_listed_value_alone()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "band":{"type":"string","enum":["low","medium","high"]},
              "who":{"type":"string","enum":["ada@example.com","nobody"]},
              "fixed":{"const":"grace@example.org"},
              "card":{"enum":[4111111111111111, 1]}}}
            """);
        var properties = Derive(declared, null, Redactor).GetProperty("properties");
        Assert.Equal("""{"type":"string","enum":["low","medium","high"]}""", properties.GetProperty("band").GetRawText());
        Assert.Equal("""{"type":"string"}""", properties.GetProperty("who").GetRawText());
        Assert.Equal("{}", properties.GetProperty("fixed").GetRawText());
        Assert.Equal("{}", properties.GetProperty("card").GetRawText());

        AssertValid(Derive(declared, null, Redactor), Shape("""{"band":"low","who":"ada@example.com","fixed":"grace@example.org","card":4111111111111111}""", null));
    }

    [Fact]
    public void Numbers_accept_a_string_where_a_card_number_could_be_redacted()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "total":{"type":"integer"},
              "price":{"type":["number","null"]},
              "qty":{"type":"integer","maximum":1000},
              "big":{"type":"integer","exclusiveMaximum":1000000000000}},
             "required":["total"]}
            """);
        var properties = Derive(declared, null, Redactor).GetProperty("properties");
        Assert.Equal("""{"type":["integer","string"]}""", properties.GetProperty("total").GetRawText());
        Assert.Equal("""{"type":["number","null","string"]}""", properties.GetProperty("price").GetRawText());
        Assert.Equal("""{"type":"integer","maximum":1000}""", properties.GetProperty("qty").GetRawText());
        Assert.Equal("""{"type":"integer","exclusiveMaximum":1000000000000}""", properties.GetProperty("big").GetRawText());

        // Without PII detection numbers are never replaced: nothing to change.
        Assert.Equal(declared.GetRawText(), AdvertisedOutputSchema.Derive(declared, null, SecretsOnly)!.Value.GetRawText());

        var shaped = Shape("""{"total":4111111111111111,"price":5.5}""", null);
        Assert.Equal("[REDACTED:card]", shaped.GetProperty("total").GetString());
        AssertValid(Derive(declared, null, Redactor), shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void Values_under_secret_looking_or_unknown_names_accept_the_marker_string()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "apiKey":{"type":"integer","minimum":1},
              "limits":{"type":"object","additionalProperties":{"type":"integer","maximum":10}},
              "labels":{"type":"object","patternProperties":{"^x-":{"type":"boolean"}},"additionalProperties":false}},
             "required":["apiKey"],"additionalProperties":false}
            """);
        var derived = Derive(declared, null, SecretsOnly);
        var properties = derived.GetProperty("properties");
        Assert.Equal("""{"type":["string","null"]}""", properties.GetProperty("apiKey").GetRawText());
        Assert.Equal("""{"type":["integer","string"],"maximum":10}""", properties.GetProperty("limits").GetProperty("additionalProperties").GetRawText());
        Assert.Equal("""{"type":["boolean","string"]}""", properties.GetProperty("labels").GetProperty("patternProperties").GetProperty("^x-").GetRawText());

        var shaped = Shape("""{"apiKey":42,"limits":{"rate":3,"session_token":7},"labels":{"x-password":true}}""", null, SecretsOnly);
        Assert.Equal("[REDACTED:secret]", shaped.GetProperty("limits").GetProperty("session_token").GetString());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void Projection_keeps_the_selected_properties_and_only_the_requirements_it_always_meets()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "id":{"type":"string"},
              "secret_sauce":{"type":"string"},
              "customer":{"type":"object","properties":{"name":{"type":"string"},"tier":{"type":"string"}},"required":["name","tier"]},
              "maybe":{"type":["object","null"],"properties":{"x":{"type":"string"}},"required":["x"]},
              "orders":{"type":"array","minItems":1,"items":{"type":"object","properties":{"id":{"type":"string"},"total":{"type":"integer"}},"required":["id","total"]}}},
             "required":["id","secret_sauce","customer","maybe","orders"],"additionalProperties":false}
            """);
        var derived = Derive(declared, Projection(["/id", "/customer/name", "/maybe/x", "/orders/*/id"]), null);
        Assert.Equal("""
            {"type":"object","properties":{"id":{"type":"string"},"customer":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]},"maybe":{"type":["object","null"],"properties":{"x":{"type":"string"}},"required":["x"]},"orders":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]},"minItems":1}},"required":["id","customer","orders"],"additionalProperties":false}
            """, derived.GetRawText());

        var raw = """{"id":"c1","secret_sauce":"s","customer":{"name":"Ada","tier":"gold"},"maybe":null,"orders":[{"id":"o1","total":1}]}""";
        var shaped = Shape(raw, Projection(["/id", "/customer/name", "/maybe/x", "/orders/*/id"], redact: false));
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void A_star_goes_over_array_items_and_over_object_properties()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "byRegion":{"type":"object","properties":{"eu":{"type":"object","properties":{"n":{"type":"integer"},"m":{"type":"integer"}},"required":["n","m"]}},
                          "additionalProperties":{"type":"object","properties":{"n":{"type":"integer"},"m":{"type":"integer"}},"required":["n","m"]}},
              "tags":{"type":"array","items":{"type":["string","null"]}}},
             "required":["byRegion","tags"]}
            """);
        var projection = Projection(["/byRegion/*/n", "/tags/*"], redact: false);
        var derived = Derive(declared, projection, null);
        var byRegion = derived.GetProperty("properties").GetProperty("byRegion");
        Assert.Equal("""{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""", byRegion.GetProperty("properties").GetProperty("eu").GetRawText());
        Assert.Equal("""{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}""", byRegion.GetProperty("additionalProperties").GetRawText());

        var shaped = Shape("""{"byRegion":{"eu":{"n":1,"m":2},"us":{"n":3,"m":4}},"tags":["a",null]}""", projection);
        Assert.Equal("""{"byRegion":{"eu":{"n":1},"us":{"n":3}},"tags":["a",null]}""", shaped.GetRawText());
        AssertValid(derived, shaped);
    }

    [Fact]
    public void Items_a_pointer_may_not_reach_accept_the_empty_placeholder()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "rows":{"type":"array","items":{"type":"object","properties":{"a":{"type":"object","properties":{"b":{"type":"string"}}},"c":{"type":"string"}},"required":["c"]}},
              "words":{"type":"array","items":{"type":"string"}},
              "slots":{"type":"array","items":{"type":["object","null"],"properties":{"id":{"type":"string"}},"required":["id"]}}}}
            """);
        var projection = Projection(["/rows/*/a/b", "/words/*/x", "/slots/*/id"], redact: false);
        var derived = Derive(declared, projection, null);
        var properties = derived.GetProperty("properties");
        Assert.False(properties.GetProperty("rows").GetProperty("items").TryGetProperty("required", out _));
        Assert.Equal("""{"type":"object","maxProperties":0}""", properties.GetProperty("words").GetProperty("items").GetRawText());
        Assert.Equal("""{"type":["object","null"],"properties":{"id":{"type":"string"}}}""", properties.GetProperty("slots").GetProperty("items").GetRawText());

        var shaped = Shape("""{"rows":[{"c":"x"},{"a":{"b":"y"},"c":"z"}],"words":["one","two"],"slots":[null,{"id":"s1"}]}""", projection);
        Assert.Equal("""{"rows":[{},{"a":{"b":"y"}}],"words":[{},{}],"slots":[{},{"id":"s1"}]}""", shaped.GetRawText());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void What_a_pointer_cannot_follow_is_left_unconstrained()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "choice":{"anyOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"string"}]},
              "list":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}},
              "elsewhere":{"$ref":"other.json#/x"}},
             "required":["choice","list"]}
            """);
        var projection = Projection(["/choice/a", "/list/1/id", "/elsewhere/y"], redact: false);
        var properties = Derive(declared, projection, null).GetProperty("properties");
        Assert.Equal("{}", properties.GetProperty("choice").GetRawText());
        Assert.Equal("""{"type":"array"}""", properties.GetProperty("list").GetRawText());
        Assert.Equal("{}", properties.GetProperty("elsewhere").GetRawText());

        var shaped = Shape("""{"choice":{"a":"x"},"list":[{"id":"1"},{"id":"2"}],"elsewhere":{"y":1}}""", projection);
        Assert.Equal("""{"choice":{"a":"x"},"list":[null,{"id":"2"}],"elsewhere":{"y":1}}""", shaped.GetRawText());
        AssertValid(Derive(declared, projection, null), shaped);

        // The validator cannot resolve the external $ref either: check the rest of the declared schema.
        var resolvable = JsonNode.Parse(declared.GetRawText())!;
        resolvable["properties"]!.AsObject().Remove("elsewhere");
        AssertInvalid(JsonSerializer.SerializeToElement(resolvable), shaped);
    }

    [Fact]
    public void Local_refs_are_inlined_and_a_recursive_one_becomes_unconstrained()
    {
        var declared = Schema("""
            {"type":"object","$defs":{"contact":{"type":"object","properties":{"email":{"type":"string","format":"email"},"name":{"type":"string"}},"required":["email","name"],"additionalProperties":false}},
             "properties":{"owner":{"$ref":"#/$defs/contact"},"team":{"type":"array","items":{"$ref":"#/$defs/contact"}},"parent":{"$ref":"#"}},
             "required":["owner"]}
            """);
        var derived = Derive(declared, Projection(["/owner/email", "/team/*/name", "/parent"]), Redactor);
        Assert.DoesNotContain("$ref", derived.GetRawText());
        Assert.DoesNotContain("$defs", derived.GetRawText());
        var properties = derived.GetProperty("properties");
        Assert.Equal("""{"type":"object","properties":{"email":{"type":"string"}},"required":["email"],"additionalProperties":false}""", properties.GetProperty("owner").GetRawText());
        Assert.Equal("""{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}""", properties.GetProperty("team").GetProperty("items").GetRawText());
        Assert.Equal("{}", properties.GetProperty("parent").GetRawText());

        var shaped = Shape("""{"owner":{"email":"ada@example.com","name":"Ada"},"team":[{"email":"g@example.org","name":"Grace"}],"parent":{"owner":{"email":"x@example.com","name":"X"}}}""",
            Projection(["/owner/email", "/team/*/name", "/parent"]));
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void MaxItems_lets_arrays_shrink_and_the_root_carry_the_truncated_marker()
    {
        var declared = Schema("""
            {"type":"object","properties":{"rows":{"type":"array","minItems":2,"items":{"type":"integer","maximum":9},"contains":{"const":9}}},
             "required":["rows"],"additionalProperties":false,"maxProperties":1}
            """);
        var projection = Projection([], maxItems: 1, redact: false);
        var derived = Derive(declared, projection, null);
        Assert.Equal("""
            {"type":"object","properties":{"rows":{"type":"array","items":{"type":"integer","maximum":9}},"_truncated":{"description":"Set by ControlPlane when it shortened arrays or withheld an oversized result.","type":"boolean","const":true}},"required":["rows"],"additionalProperties":false}
            """, derived.GetRawText());

        var shaped = Shape("""{"rows":[1,9]}""", projection);
        Assert.Equal("""{"rows":[1],"_truncated":true}""", shaped.GetRawText());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void MaxBytes_lets_the_root_be_replaced_by_the_truncation_note()
    {
        var declared = Schema("""
            {"type":"object","properties":{"rows":{"type":"array","items":{"type":"string"}},"note":{"type":"integer"}},
             "required":["rows"],"additionalProperties":false,"patternProperties":{"^_":{"type":"integer"}}}
            """);
        var projection = Projection([], maxBytes: 64, redact: false);
        var derived = Derive(declared, projection, null);
        Assert.False(derived.TryGetProperty("required", out _));
        Assert.Equal("object", derived.GetProperty("type").GetString());

        var shaped = Shape("""{"rows":["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]}""", projection);
        Assert.True(shaped.GetProperty("_truncated").GetBoolean());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
        AssertValid(derived, Shape("""{"rows":["a"],"note":3}""", projection));
    }

    [Fact]
    public void Combinations_are_loosened_to_what_a_changed_value_still_meets()
    {
        var declared = Schema("""
            {"type":"object","properties":{
              "who":{"oneOf":[{"type":"string","format":"email"},{"type":"string","const":"[REDACTED:email]"}]},
              "not_a_marker":{"type":"string","not":{"const":"[REDACTED:email]"}},
              "cond":{"if":{"type":"string"},"then":{"type":"string","format":"email"},"else":{"type":"integer"}}},
             "required":["who"]}
            """);
        var derived = Derive(declared, null, Redactor);
        Assert.DoesNotContain("oneOf", derived.GetRawText());
        Assert.DoesNotContain("\"not\"", derived.GetRawText());
        Assert.DoesNotContain("\"if\"", derived.GetRawText());

        var shaped = Shape("""{"who":"ada@example.com","not_a_marker":"ada@example.com","cond":"ada@example.com"}""", null);
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void Inlining_that_loosens_never_reaches_inside_not_even_when_no_value_changes()
    {
        // Inside "not", the recursive $ref would be left open ({}), and "not {}" rejects everything.
        var declared = Schema("""
            {"type":"object","properties":{"t":{"$ref":"#/$defs/tree"}},
             "$defs":{"tree":{"type":"object","properties":{"c":{"type":"integer"}},"not":{"properties":{"c":{"$ref":"#/$defs/tree"}}}}}}
            """);
        var projection = Projection(["/t"], redact: false);
        var shaped = Shape("""{"t":{"c":1},"u":2}""", projection);
        AssertValid(declared, shaped);
        AssertValid(Derive(declared, projection, null), shaped);
    }

    [Fact]
    public void Containers_nested_deeper_than_the_redactor_goes_accept_its_marker()
    {
        var schema = new JsonObject { ["type"] = "object" };
        var value = new JsonObject();
        var (innerSchema, innerValue) = (schema, value);
        for (var i = 0; i < Redactor.MaxDepth + 4; i++)
        {
            var nextSchema = new JsonObject { ["type"] = "object" };
            innerSchema["properties"] = new JsonObject { ["d"] = nextSchema };
            innerSchema["required"] = new JsonArray("d");
            var nextValue = new JsonObject();
            innerValue["d"] = nextValue;
            (innerSchema, innerValue) = (nextSchema, nextValue);
        }

        var deep = new JsonSerializerOptions { MaxDepth = 1024 };
        var declared = JsonSerializer.SerializeToElement(schema, deep);
        var derived = Derive(declared, null, Redactor);
        var raw = JsonSerializer.SerializeToElement(value, deep);
        AssertValid(declared, raw);
        var shaped = new ResultShaper(Redactor, Options.Create(new ResultOptions())).Shape(new CallToolResult { StructuredContent = raw }, null).StructuredContent!.Value;
        Assert.Contains("[REDACTED:too-deep]", shaped.GetRawText());
        AssertValid(derived, shaped);
        AssertInvalid(declared, shaped);
    }

    [Fact]
    public void A_root_that_cannot_be_described_advertises_no_schema()
    {
        var combined = Schema("""{"type":"object","anyOf":[{"properties":{"a":{"type":"string"}},"required":["a"]},{"properties":{"b":{"type":"string"}},"required":["b"]}]}""");
        Assert.Null(AdvertisedOutputSchema.Derive(combined, Projection(["/a"]), null));
        Assert.Null(AdvertisedOutputSchema.Derive(combined, Projection([], maxItems: 2), null));
        Assert.NotNull(AdvertisedOutputSchema.Derive(combined, null, Redactor));
        Assert.Null(AdvertisedOutputSchema.Derive(Schema("""{"$ref":"https://example.com/s.json"}"""), null, Redactor));
    }

    [Fact]
    public void The_input_is_never_changed_and_the_output_is_deterministic()
    {
        var text = """{"type":"object","$defs":{"n":{"type":"integer"}},"properties":{"a":{"$ref":"#/$defs/n"},"b":{"type":"array","items":{"type":"string","format":"email"},"minItems":1}},"required":["a","b"]}""";
        var declared = Schema(text);
        var projection = Projection(["/a", "/b/*"], maxItems: 1, maxBytes: 100);
        var first = Derive(declared, projection, Redactor).GetRawText();
        var second = Derive(declared, projection, Redactor).GetRawText();
        Assert.Equal(first, second);
        Assert.Equal(text, declared.GetRawText());
    }

    // ---- The per-policy cache behind tools/list ----

    [Fact]
    public void Tools_list_shows_the_derived_schema_cached_per_policy_and_tool()
    {
        var shaper = new ResultShaper(Redactor, Options.Create(new ResultOptions()));
        var listed = desk.Listed["list_orders"];
        var tool = new ToolDescriptor(SupportDeskServer.ServerId, listed, ToolClassification.Read, static (_, _) => ValueTask.FromResult(new CallToolResult()), "support-desk__list_orders");
        var projected = Policy(new ProjectionSetting(SupportDeskServer.ServerId, "list_orders", ["/orders/*/id"], 5, null, true, "r", "op", DateTimeOffset.UtcNow));

        var advertised = shaper.Advertised.For(tool, projected, isAction: false, ownName: false);
        Assert.Equal("support-desk__list_orders", advertised.Name);
        Assert.Same(advertised, shaper.Advertised.For(tool, projected, isAction: false, ownName: false));
        Assert.Equal("list_orders", shaper.Advertised.For(tool, projected, isAction: false, ownName: true).Name);
        var properties = advertised.OutputSchema!.Value.GetProperty("properties");
        Assert.False(properties.TryGetProperty("customer_id", out _));
        Assert.True(properties.TryGetProperty("_truncated", out _));
        Assert.Equal(listed.InputSchema.GetRawText(), advertised.InputSchema.GetRawText());

        // An action's results are not shaped: it is listed as declared. So is a tool whose results nothing changes.
        Assert.Same(tool.ProtocolTool, shaper.Advertised.For(tool, projected, isAction: true, ownName: false));
        var unshaped = new ResultShaper(Redactor, Options.Create(new ResultOptions { RedactPiiByDefault = false }));
        Assert.Same(tool.OwnNameTool, unshaped.Advertised.For(tool, GuardPolicy.Empty, isAction: false, ownName: true));
        var lookup = new ToolDescriptor(SupportDeskServer.ServerId, desk.Listed["lookup_customer_by_email"], ToolClassification.Read, static (_, _) => ValueTask.FromResult(new CallToolResult()), "lookup_customer_by_email");
        Assert.Same(lookup.ProtocolTool, shaper.Advertised.For(lookup, GuardPolicy.Empty, isAction: false, ownName: false));

        // A new policy is a new derivation.
        var wider = Policy(new ProjectionSetting(SupportDeskServer.ServerId, "list_orders", ["/customer_id"], null, null, false, "r", "op", DateTimeOffset.UtcNow));
        var again = shaper.Advertised.For(tool, wider, isAction: false, ownName: false);
        Assert.NotSame(advertised, again);
        Assert.Equal("""{"type":"object","properties":{"customer_id":{"type":"string"}},"required":["customer_id"]}""", again.OutputSchema!.Value.GetRawText());
        Assert.True(shaper.Advertised.HasOutputSchema(tool, wider, isAction: false));
    }

    [Fact]
    public void A_tool_whose_schema_cannot_be_derived_is_listed_without_one()
    {
        var shaper = new ResultShaper(Redactor, Options.Create(new ResultOptions()));
        var declared = Schema("""{"type":"object","oneOf":[{"properties":{"a":{"type":"string"}},"required":["a"]},{"required":["b"]}]}""");
        var tool = new ToolDescriptor("srv", new Tool { Name = "t", OutputSchema = declared }, ToolClassification.Read, static (_, _) => ValueTask.FromResult(new CallToolResult()), "srv__t");
        var policy = Policy(new ProjectionSetting("srv", "t", ["/a"], null, null, true, "r", "op", DateTimeOffset.UtcNow));
        Assert.Null(shaper.Advertised.For(tool, policy, isAction: false, ownName: false).OutputSchema);
        Assert.False(shaper.Advertised.HasOutputSchema(tool, policy, isAction: false));
        Assert.True(shaper.Advertised.HasOutputSchema(tool, policy, isAction: true));
    }

    // ---- Properties: real support-desk schemas and results ----

    private static readonly string[][] FieldSets =
    [
        [], ["/customer_id"], ["/orders/*/id", "/orders/*/status"], ["/customer_id", "/orders/*/total_cents"], ["/orders/*"], ["/orders"],
        ["/orders/*/id", "/orders"], ["/orders/0/id"], ["/*"], ["/*/*"], ["/*/*/currency"], ["/orders/*/nope", "/missing"],
        ["/id", "/plan", "/has_active_subscription"], ["/refund_id", "/amount_cents", "/status"],
    ];

    private static IEnumerable<(ProjectionSetting? Projection, bool RedactByDefault)> Projections(string tool)
    {
        yield return (null, true);
        yield return (null, false);
        foreach (var fields in FieldSets)
        {
            foreach (var maxItems in (int?[])[null, 1, 3])
            {
                foreach (var maxBytes in (int?[])[null, 64, 300])
                {
                    foreach (var redact in (bool[])[true, false])
                    {
                        yield return (new ProjectionSetting(SupportDeskServer.ServerId, tool, fields, maxItems, maxBytes, redact, "test", "test", DateTimeOffset.UtcNow), true);
                    }
                }
            }
        }
    }

    [Fact]
    public void Every_shaped_support_desk_result_validates_against_the_schema_advertised_for_it()
    {
        var checkedResults = 0;
        var rejectedByDeclared = 0;
        foreach (var (tool, results) in desk.Results)
        {
            var declared = desk.Listed[tool].OutputSchema!.Value;
            foreach (var (projection, redactByDefault) in Projections(tool))
            {
                var shaper = new ResultShaper(Redactor, Options.Create(new ResultOptions { RedactPiiByDefault = redactByDefault }));
                var derived = AdvertisedOutputSchema.Derive(declared, projection, shaper.Redacts(projection) ? Redactor : null);
                Assert.NotNull(derived);
                foreach (var result in results)
                {
                    AssertValid(declared, result.StructuredContent!.Value);
                    var shaped = shaper.Shape(result, projection).StructuredContent!.Value;
                    AssertValid(derived!.Value, shaped, $"{tool} under {Describe(projection)}");
                    checkedResults++;
                    if (Errors(declared, shaped).Count > 0) rejectedByDeclared++;
                }
            }
        }

        output.WriteLine($"{checkedResults} shaped results validated; the declared schemas would have rejected {rejectedByDeclared}.");
        Assert.True(rejectedByDeclared > 0, "No shaped result broke the declared schema: the test would not notice a derivation that changes nothing.");
    }

    [Fact]
    public void A_projected_list_orders_result_breaks_the_declared_schema_and_meets_the_derived_one()
    {
        var declared = desk.Listed["list_orders"].OutputSchema!.Value;
        var projection = new ProjectionSetting(SupportDeskServer.ServerId, "list_orders", ["/orders/*/id", "/orders/*/status"], 2, null, true, "r", "op", DateTimeOffset.UtcNow);
        var shaped = new ResultShaper(Redactor, Options.Create(new ResultOptions())).Shape(desk.Results["list_orders"][0], projection).StructuredContent!.Value;
        AssertInvalid(declared, shaped);
        AssertValid(AdvertisedOutputSchema.Derive(declared, projection, Redactor)!.Value, shaped);
    }

    [Fact]
    public void Generated_support_desk_results_validate_under_any_projection()
    {
        var declared = desk.Listed["list_orders"].OutputSchema!.Value;
        var projections = Projections("list_orders").ToArray();
        var schemas = new ConcurrentDictionary<int, JsonSchema>();
        var text = Gen.OneOf("paid", "ada@example.com", "call +44 20 7946 0958", "Bearer abcdefghijklmnopqrstuvwxyz012345", "4111 1111 1111 1111", "", "GBP");
        var cents = Gen.OneOf(Gen.Long[0, 100_000], Gen.OneOf(4111111111111111L, 5555555555554444L, 378282246310005L, 1_000_000_000_000L));
        var order = Gen.Select(text, text, text, cents, text).Select((id, created, status, total, currency) => new OrderSummary(id, created, status, total, currency));
        var list = Gen.Select(text, order.Array[0, 6]).Select((customer, orders) => new OrderList(customer, orders));

        Gen.Select(Gen.Int[0, projections.Length - 1], list).Sample((index, orders) =>
        {
            var (projection, redactByDefault) = projections[index];
            var shaper = new ResultShaper(Redactor, Options.Create(new ResultOptions { RedactPiiByDefault = redactByDefault }));
            var schema = schemas.GetOrAdd(index, _ => Build(AdvertisedOutputSchema.Derive(declared, projection, shaper.Redacts(projection) ? Redactor : null)!.Value));
            var value = JsonSerializer.SerializeToElement(orders);
            var shaped = shaper.Shape(new CallToolResult { StructuredContent = value, Content = [new TextContentBlock { Text = value.GetRawText() }] }, projection);
            var errors = Errors(schema, shaped.StructuredContent!.Value);
            Assert.True(errors.Count == 0, string.Join("\n", errors));
        }, iter: 1500, print: t => $"{Describe(projections[t.Item1].Projection)}: {JsonSerializer.Serialize(t.Item2)}");
    }

    // ---- Properties: a richer schema (refs, nesting, secret names, unknown names, formats, enums, combinations) ----

    private static readonly JsonElement RichSchema = Schema("""
        {"type":"object",
         "$defs":{"contact":{"type":"object","properties":{"email":{"type":"string","format":"email"},"phone":{"type":["string","null"],"pattern":"^\\+?[0-9 ]+$"}},"required":["email"],"additionalProperties":false}},
         "properties":{
           "id":{"type":"string","pattern":"^c_[0-9]+$"},
           "band":{"enum":["low","medium","high"]},
           "contact":{"$ref":"#/$defs/contact"},
           "apiToken":{"type":"string","minLength":10},
           "tags":{"type":"array","items":{"type":"string","maxLength":40},"minItems":1,"uniqueItems":true},
           "matrix":{"type":"array","items":{"type":"array","items":{"type":"integer"}}},
           "orders":{"type":"array","minItems":1,"items":{"type":"object","properties":{
              "id":{"type":"string"},"amount":{"type":"integer"},"card":{"type":["integer","null"]},
              "lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer","maximum":1000}},"required":["sku","qty"]}},
              "payer":{"$ref":"#/$defs/contact"},
              "status":{"oneOf":[{"const":"open"},{"const":"closed"}]}},
             "required":["id","amount","lines","status"],"additionalProperties":false}},
           "attributes":{"type":"object","additionalProperties":{"type":"integer"}},
           "slots":{"type":"array","items":{"type":["object","null"],"properties":{"id":{"type":"string"},"n":{"type":"integer"}},"required":["id"]}},
           "notes":{"type":["string","null"],"format":"email"}},
         "required":["id","band","contact","apiToken","tags","orders","attributes"],
         "additionalProperties":false}
        """);

    private static readonly string[] RichPointers =
    [
        "/id", "/band", "/contact", "/contact/email", "/apiToken", "/tags", "/tags/*", "/matrix/*", "/matrix/*/*", "/matrix/*/x",
        "/orders/*/id", "/orders/*/lines/*/sku", "/orders/*/payer/email", "/orders/*", "/orders/*/lines", "/orders/0/id",
        "/orders/*/status", "/orders/*/card", "/attributes/*", "/attributes/password", "/*", "/*/*", "/notes", "/nope/x", "/slots/*/id", "/slots/*/n", "/slots/*",
    ];

    private static Gen<JsonObject> RichValue()
    {
        var email = Gen.OneOf("ada@example.com", "grace.hopper@example.org", "x@example.net");
        var contact = Gen.Select(email, Gen.OneOf<string?>("+44 20 7946 0958", null, "0123", "07700 900123"))
            .Select((e, p) => new JsonObject { ["email"] = e, ["phone"] = p });
        var number = Gen.OneOf(Gen.Long[-5, 1000], Gen.OneOf(4111111111111111L, 5555555555554444L));
        var line = Gen.Select(Gen.OneOf("SKU-1", "sku ada@example.com"), Gen.Int[0, 1000]).Select((sku, qty) => (JsonNode)new JsonObject { ["sku"] = sku, ["qty"] = qty });
        var order = Gen.Select(Gen.OneOf("o1", "o2 +44 20 7946 0958"), number, Gen.OneOf<long?>(null, 12, 4111111111111111L), line.Array[0, 3], Gen.Bool, contact, Gen.OneOf("open", "closed"))
            .Select((id, amount, card, lines, payer, who, status) =>
            {
                var o = new JsonObject { ["id"] = id, ["amount"] = amount, ["card"] = card, ["lines"] = new JsonArray(lines), ["status"] = status };
                if (payer) o["payer"] = who;
                return (JsonNode)o;
            });
        var tags = Gen.OneOf("a", "b", "ada@example.com", "bob@example.com", "4111 1111 1111 1111").Array[1, 5]
            .Select(t => new JsonArray([.. t.Distinct().Select(s => (JsonNode)s)]));
        var matrix = Gen.Long[0, 9].Select(n => (JsonNode)n).Array[0, 3].Select(r => (JsonNode)new JsonArray(r)).Array[0, 3].Select(m => new JsonArray(m));
        var attributes = Gen.Select(Gen.OneOf("size", "password", "sessionToken", "count"), number).Array[0, 3]
            .Select(kv => { var o = new JsonObject(); foreach (var (k, v) in kv) o[k] = v; return o; });
        var slot = Gen.Frequency((1, Gen.Const((JsonNode?)null)), (2, Gen.Select(Gen.OneOf("s1", "s2"), Gen.Int[0, 9], Gen.Bool)
            .Select((id, n, withN) => (JsonNode?)(withN ? new JsonObject { ["id"] = id, ["n"] = n } : new JsonObject { ["id"] = id }))));
        var rest = Gen.Select(order.Array[1, 4], attributes, Gen.OneOf<string?>(null, "ada@example.com"), slot.Array[0, 3]);
        return Gen.Select(Gen.Int[0, 99999], Gen.OneOf("low", "medium", "high"), contact, tags, matrix, rest)
            .Select((id, band, who, t, m, more) => new JsonObject
            {
                ["id"] = $"c_{id}", ["band"] = band, ["contact"] = who, ["apiToken"] = "sk-abcdefghijklmnopqrstuvwxyz0123", ["tags"] = t,
                ["matrix"] = m, ["orders"] = new JsonArray(more.Item1), ["attributes"] = more.Item2, ["notes"] = more.Item3, ["slots"] = new JsonArray(more.Item4),
            });
    }

    [Fact]
    public void Generated_results_of_a_rich_schema_validate_under_any_projection_and_redaction()
    {
        var projection = Gen.Select(Gen.OneOf(RichPointers).Array[0, 4], Gen.OneOf<int?>(null, 1, 2), Gen.OneOf<int?>(null, 64, 400, 4000), Gen.Int[0, 3])
            .Select((fields, maxItems, maxBytes, mode) => (Projection: mode == 3 ? null : new ProjectionSetting("s", "t", fields, maxItems, maxBytes, mode != 0, "test", "test", DateTimeOffset.UtcNow), Pii: mode != 2));

        Gen.Select(projection, RichValue()).Sample((shaping, value) =>
        {
            var redactor = shaping.Pii ? Redactor : SecretsOnly;
            var raw = JsonSerializer.SerializeToElement(value);
            AssertValid(RichSchema, raw, "the generator must make conforming values");
            var shaper = new ResultShaper(redactor, Options.Create(new ResultOptions()));
            var derived = AdvertisedOutputSchema.Derive(RichSchema, shaping.Projection, shaper.Redacts(shaping.Projection) ? redactor : null);
            Assert.NotNull(derived);
            var shaped = shaper.Shape(new CallToolResult { StructuredContent = raw, Content = [] }, shaping.Projection).StructuredContent!.Value;
            var errors = Errors(derived!.Value, shaped);
            Assert.True(errors.Count == 0, $"{string.Join("\n", errors)}\nschema: {derived.Value.GetRawText()}\nshaped: {shaped.GetRawText()}");
        }, iter: 1500, print: t => $"{Describe(t.Item1.Projection)} pii={t.Item1.Pii}: {t.Item2.ToJsonString()}");
    }

    // ---- Helpers ----

    private static JsonElement Schema(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static JsonElement Derive(JsonElement declared, ProjectionSetting? projection, Redactor? redactor) =>
        AdvertisedOutputSchema.Derive(declared, projection, redactor) ?? throw new Xunit.Sdk.XunitException("No schema was derived.");

    private static ProjectionSetting Projection(string[] fields, int? maxItems = null, int? maxBytes = null, bool redact = true) =>
        new("srv", "tool", fields, maxItems, maxBytes, redact, "test", "test", DateTimeOffset.UtcNow);

    private static GuardPolicy Policy(params ProjectionSetting[] projections) => new(new GuardStateSnapshot(1, [], [], Projections: projections));

    /// <summary>The structuredContent the real shaper makes of <paramref name="json"/>, redacting by default.</summary>
    private static JsonElement Shape(string json, ProjectionSetting? projection, Redactor? redactor = null)
    {
        var shaper = new ResultShaper(redactor ?? Redactor, Options.Create(new ResultOptions()));
        var value = Schema(json);
        return shaper.Shape(new CallToolResult { StructuredContent = value, Content = [new TextContentBlock { Text = json }] }, projection).StructuredContent!.Value;
    }

    private static string Describe(ProjectionSetting? p) =>
        p is null ? "no projection" : $"fields [{string.Join(", ", p.Fields)}] maxItems {p.MaxItems} maxBytes {p.MaxBytes} redact {p.RedactPii}";

    private static JsonSchema Build(JsonElement schema) => JsonSchema.Build(schema, new BuildOptions { SchemaRegistry = new SchemaRegistry() });

    private static List<string> Errors(JsonElement schema, JsonElement instance) => Errors(Build(schema), instance);

    private static List<string> Errors(JsonSchema schema, JsonElement instance)
    {
        var results = schema.Evaluate(instance, Evaluation);
        var errors = new List<string>();
        if (!results.IsValid) Collect(results, errors);
        if (!results.IsValid && errors.Count == 0) errors.Add("invalid");
        return errors;
    }

    private static void Collect(EvaluationResults results, List<string> into)
    {
        if (results.Errors is { Count: > 0 } errors)
        {
            foreach (var (keyword, message) in errors) into.Add($"{results.InstanceLocation} ({results.EvaluationPath}) {keyword}: {message}");
        }

        foreach (var detail in results.Details ?? []) Collect(detail, into);
    }

    private void AssertValid(JsonElement schema, JsonElement instance, string? context = null)
    {
        var errors = Errors(schema, instance);
        if (errors.Count == 0) return;
        output.WriteLine($"schema: {schema.GetRawText()}\ninstance: {instance.GetRawText()}");
        Assert.Fail($"{context}{(context is null ? "" : ": ")}{string.Join("\n", errors)}\nschema: {schema.GetRawText()}\ninstance: {instance.GetRawText()}");
    }

    private static void AssertInvalid(JsonElement schema, JsonElement instance) =>
        Assert.True(Errors(schema, instance).Count > 0, $"expected {instance.GetRawText()} to break {schema.GetRawText()}");

    /// <summary>The support-desk tools as a client lists them, and real results of each, from a seeded database.</summary>
    public sealed class SupportDeskResults : IAsyncLifetime
    {
        private readonly SupportDeskTestDatabase _db = new();
        private SupportDeskMcpHarness _mcp = null!;

        public Dictionary<string, Tool> Listed { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, List<CallToolResult>> Results { get; } = new(StringComparer.Ordinal);

        public async Task InitializeAsync()
        {
            var ct = SupportDeskTestDatabase.Timeout();
            await _db.Database.InitializeAsync(ct);
            _mcp = await SupportDeskMcpHarness.StartAsync(SupportDeskServer.CreateTools(_db.Database), ct);
            foreach (var tool in await _mcp.Client.ListToolsAsync(cancellationToken: ct)) Listed[tool.Name] = tool.ProtocolTool;

            var customers = await _db.QueryAsync("SELECT id, email FROM customers ORDER BY id LIMIT 6;");
            foreach (var row in customers)
            {
                var id = row.Single(c => c.Column == "id").Value!;
                var email = row.Single(c => c.Column == "email").Value!;
                await Add("lookup_customer_by_email", new() { ["email"] = email }, ct);
                await Add("list_orders", new() { ["customer_id"] = id, ["limit"] = 100 }, ct);
            }

            await Add("list_orders", new() { ["customer_id"] = SupportDeskSeed.DemoCustomerId, ["limit"] = 100 }, ct);
            await Add("create_refund", new() { ["customer_id"] = SupportDeskSeed.DemoCustomerId, ["amount_cents"] = 1250, ["reason"] = "duplicate" }, ct);
            await Add("create_refund", new() { ["customer_id"] = customers[1].Single(c => c.Column == "id").Value, ["amount_cents"] = 1_000_000, ["reason"] = "error" }, ct);

            // The demo customer's orders first: the test that needs a non-empty list reads [0].
            Results["list_orders"].Sort((a, b) => b.StructuredContent!.Value.GetProperty("orders").GetArrayLength().CompareTo(a.StructuredContent!.Value.GetProperty("orders").GetArrayLength()));
        }

        private async Task Add(string tool, Dictionary<string, object?> arguments, CancellationToken ct)
        {
            var result = await _mcp.CallAsync(tool, arguments, ct);
            if (result.IsError is true || result.StructuredContent is null) throw new InvalidOperationException($"{tool} failed: {JsonSerializer.Serialize(result.Content)}");
            if (!Results.TryGetValue(tool, out var list)) Results[tool] = list = [];
            list.Add(result);
        }

        public async Task DisposeAsync()
        {
            await _mcp.DisposeAsync();
            _db.Dispose();
        }
    }
}
