using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Audit.Redaction;
using ControlPlane.Policy;

namespace ControlPlane.Guard.Results;

/// <summary>
/// The outputSchema tools/list advertises for a read tool whose results <see cref="ResultShaper"/> changes: every
/// shaped <c>structuredContent</c> must validate against it, because official clients validate each result against
/// the advertised schema and throw when it does not.
/// </summary>
/// <remarks>
/// <para>The derivation assumes what the client assumes: an unshaped result validates against the tool's declared
/// schema. From there it follows what the shaper does, in the shaper's order:</para>
/// <list type="number">
/// <item>Projection keeps the values at the operator's pointers. Only the selected properties stay, and a
/// <c>required</c> entry stays only where a conforming result always keeps it. A <c>*</c> over an array holds an
/// item it does not reach with <c>{}</c>, so such items must accept an empty object. A pointer through something
/// the derivation cannot follow (an array index, <c>anyOf</c>/<c>oneOf</c>/<c>allOf</c>/<c>not</c>/<c>if</c>, a
/// <c>$ref</c> it cannot resolve) leaves that subtree unconstrained (<c>{}</c>).</item>
/// <item>MaxItems shortens any array, so <c>minItems</c> and <c>contains</c> go, and the root may gain
/// <c>"_truncated": true</c>.</item>
/// <item>Redaction may rewrite part of any string, so string constraints (<c>format</c>, <c>pattern</c>,
/// lengths) go, and <c>enum</c>/<c>const</c> stay only where the redactor leaves every listed value as it is.
/// Some values become a marker string whole: anything under a secret-looking property name (any name, where
/// <c>additionalProperties</c> or <c>patternProperties</c> admit unknown ones), card numbers written as JSON
/// numbers when PII detection is on, and containers nested deeper than <see cref="Redactor.MaxDepth"/>; those
/// places accept a string too. Distinct items can become equal, so <c>uniqueItems</c> goes.</item>
/// <item>MaxBytes may replace the whole result with <c>{"_truncated": true, "note": "..."}</c>, so the root keeps
/// no <c>required</c> and accepts both properties.</item>
/// </list>
/// <para>Everything else is only ever loosened: the output keeps the keywords it understands, inlines local
/// <c>$ref</c>s (a recursive one becomes <c>{}</c>), turns <c>oneOf</c> and <c>if</c>/<c>then</c>/<c>else</c> into
/// <c>anyOf</c> and drops <c>not</c>, <c>unevaluated*</c> and unknown keywords, because a changed value could match
/// more branches than before. Dropping a constraint can never make a shaped result fail, so where in doubt the
/// derivation drops. When the root itself cannot be described as an object schema, the result is null: the tool
/// is then listed without an outputSchema. Pointer rules (<see cref="RedactionRules"/>) are not considered: the
/// shaper redacts results without a tool key, so they never apply to results.</para>
/// <para>Pure and deterministic: the input is never changed, and the output is a new element, or the declared
/// element itself when nothing needs to change.</para>
/// </remarks>
public static class AdvertisedOutputSchema
{
    /// <summary>Keywords copied as they are: they describe, never assert.</summary>
    private static readonly HashSet<string> Annotations =
        ["title", "description", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"];

    /// <summary>String assertions a partial redaction can break.</summary>
    private static readonly HashSet<string> StringAssertions =
        ["format", "pattern", "minLength", "maxLength", "contentEncoding", "contentMediaType"];

    /// <summary>Assertions that hold for any value a shaper leaves in place (numbers are never rewritten, only replaced).</summary>
    private static readonly HashSet<string> KeptAssertions =
        ["type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "maxItems", "maxProperties"];

    /// <summary>Assertions about which properties exist: redaction and array caps leave keys alone.</summary>
    private static readonly HashSet<string> KeyAssertions = ["required", "minProperties", "dependentRequired"];

    /// <summary>Keywords that make one value answer to several subschemas, or to a condition.</summary>
    private static readonly string[] Combinators = ["allOf", "anyOf", "oneOf", "not", "if", "then", "else"];

    /// <summary>The largest number that cannot be a card: cards have 13 or more digits.</summary>
    private const double BelowCardNumbers = 999_999_999_999;

    /// <summary>Subschemas visited at most, so a schema built of many shared <c>$ref</c>s cannot blow up when inlined.</summary>
    private const int Budget = 20_000;

    /// <summary>Nested <c>$ref</c>s inlined at most on one path: beyond that a subschema is left open.</summary>
    private const int MaxInlined = 32;

    // Schemas nest about twice as deep as the values they describe, and those go to Redactor.MaxDepth and beyond.
    private static readonly JsonDocumentOptions DeepDocument = new() { MaxDepth = 1024 };
    private static readonly JsonSerializerOptions DeepOutput = new() { MaxDepth = 1024 };

    /// <summary>
    /// The schema to advertise for results shaped under <paramref name="projection"/> and, when
    /// <paramref name="redactor"/> is not null, redacted by it; null to advertise none.
    /// </summary>
    /// <param name="declared">The tool's own outputSchema.</param>
    /// <param name="projection">The operator's projection for the tool, if any.</param>
    /// <param name="redactor">The redactor the shaper uses, or null when results of this tool are not redacted.</param>
    public static JsonElement? Derive(JsonElement? declared, ProjectionSetting? projection, Redactor? redactor)
    {
        if (declared is not { } schema || (projection is null && redactor is null)) return declared;
        if (schema.ValueKind != JsonValueKind.Object) return null;

        var derivation = new Derivation(schema, projection, redactor);
        var derived = derivation.Root();
        if (derived is null) return null;

        var element = JsonSerializer.SerializeToElement(derived, DeepOutput);
        return JsonElement.DeepEquals(schema, element) ? schema : element;
    }

    /// <summary>Where a subschema applies: how deep in the result, and whether a redactor may replace it whole by name.</summary>
    private enum PlaceKind
    {
        Root,

        /// <summary>The value of a property whose name is known.</summary>
        Property,

        /// <summary>The value of a property whose name the schema does not fix (it may be secret-looking).</summary>
        AnyProperty,

        Item,

        /// <summary>Another subschema for the same value (<c>allOf</c> and the like).</summary>
        SameValue,
    }

    private readonly record struct Place(PlaceKind Kind, int Depth, string? Name = null)
    {
        public Place Property(string name) => new(PlaceKind.Property, Depth + 1, name);

        public Place AnyProperty() => new(PlaceKind.AnyProperty, Depth + 1);

        public Place Item() => new(PlaceKind.Item, Depth + 1);

        public Place SameValue() => this with { Kind = PlaceKind.SameValue, Name = null };
    }

    /// <summary>The projection's pointers as a trie, in the shaper's reading of them.</summary>
    private sealed class Selection
    {
        /// <summary>Some pointer ends here: the value is kept whole.</summary>
        public bool Whole { get; private set; }

        public Dictionary<string, Selection> Named { get; } = new(StringComparer.Ordinal);

        /// <summary>What a <c>*</c> segment selects below every property or item.</summary>
        public Selection? Any { get; private set; }

        /// <summary>A segment the shaper reads as an array index: positions before it become nulls, which no item schema describes.</summary>
        public bool HasIndex => Named.Keys.Any(segment => int.TryParse(segment, out _));

        public static Selection Of(IEnumerable<string> pointers)
        {
            var root = new Selection();
            foreach (var pointer in pointers)
            {
                var node = root;
                foreach (var segment in ResultShaper.PointerSegments(pointer))
                {
                    node = segment == "*" ? node.Any ??= new Selection() : node.Named.TryGetValue(segment, out var child) ? child : node.Named[segment] = new Selection();
                }

                node.Whole = true;
            }

            return root;
        }

        /// <summary>What applies to the property <paramref name="name"/>: pointers naming it and pointers through <c>*</c>.</summary>
        public Selection? For(string name)
        {
            var named = Named.GetValueOrDefault(name);
            return named is null ? Any : Any is null ? named : Union(named, Any);
        }

        private static Selection Union(Selection a, Selection b)
        {
            var union = new Selection { Whole = a.Whole || b.Whole };
            foreach (var (name, child) in a.Named) union.Named[name] = b.Named.TryGetValue(name, out var other) ? Union(child, other) : child;
            foreach (var (name, child) in b.Named) union.Named.TryAdd(name, child);
            union.Any = a.Any is null ? b.Any : b.Any is null ? a.Any : Union(a.Any, b.Any);
            return union;
        }
    }

    /// <summary>One derivation: the declared document (for <c>$ref</c>s), the shaping it describes, and its budget.</summary>
    private sealed class Derivation(JsonElement document, ProjectionSetting? projection, Redactor? redactor)
    {
        private readonly bool _cap = projection?.MaxItems is not null;
        private readonly bool _replaceable = projection?.MaxBytes is not null;
        private readonly bool _redact = redactor is not null;

        /// <summary>The <c>$ref</c>s being inlined on the current path; meeting one again means recursion.</summary>
        private readonly HashSet<string> _expanding = new(StringComparer.Ordinal) { "#" };
        private int _budget = Budget;

        public JsonObject? Root()
        {
            var place = new Place(PlaceKind.Root, 0);
            var root = projection is { Fields.Length: > 0 } ? Projected(document, Selection.Of(projection.Fields), place) : Whole(document, place);

            // The root of a result is always an object (MCP), and the projection makes one of anything. A root that
            // came out unconstrained is one the derivation could not follow.
            if (root is not JsonObject schema || schema.All(keyword => Annotations.Contains(keyword.Key))) return null;
            if (schema["type"] is { } type && !TypeIncludes(type, "object")) return null;
            schema.Remove("type");
            schema.Insert(0, "type", "object");
            if (document.TryGetProperty("$schema", out var dialect)) schema.Insert(0, "$schema", Copy(dialect));

            return _cap || _replaceable ? WithMarkers(schema) : schema;
        }

        /// <summary>
        /// The root as it may come back marked: <c>_truncated</c> when arrays were capped, or nothing but
        /// <c>_truncated</c> and <c>note</c> when the result was too large.
        /// </summary>
        private JsonObject? WithMarkers(JsonObject schema)
        {
            // A marker property cannot be added to every branch of a combination: no sensible schema then.
            if (Combinators.Any(schema.ContainsKey)) return null;

            var properties = schema["properties"] as JsonObject ?? [];
            schema["properties"] = properties;
            AddAlternative(properties, ResultShaper.TruncatedMarker, new JsonObject
            {
                ["description"] = "Set by ControlPlane when it shortened arrays or withheld an oversized result.",
                ["type"] = "boolean",
                ["const"] = true,
            });
            if (_replaceable)
            {
                AddAlternative(properties, "note", new JsonObject { ["type"] = "string" });
                schema.Remove("required");
                schema.Remove("minProperties");
            }

            // A marker must also get past what constrains every property of the root.
            schema.Remove("maxProperties");
            schema.Remove("propertyNames");
            schema.Remove("dependentRequired");
            schema.Remove("dependentSchemas");
            schema.Remove("dependencies");
            if (schema["patternProperties"] is JsonObject patterns)
            {
                foreach (var name in patterns.Select(p => p.Key).ToList())
                {
                    patterns[name] = new JsonObject { ["anyOf"] = new JsonArray(Detach(patterns, name), new JsonObject { ["type"] = new JsonArray("boolean", "string") }) };
                }
            }

            return schema;
        }

        /// <summary>
        /// A value kept whole (or everything, without a projection): the declared schema with local <c>$ref</c>s
        /// inlined and, where values may change, loosened as the remarks above say.
        /// </summary>
        private JsonNode Whole(JsonElement schema, Place place)
        {
            if (!Spend() || place.Depth >= Redactor.MaxDepth) return new JsonObject();
            if (_redact && place.Kind == PlaceKind.Property && Redactor.IsSecretName(place.Name)) return SecretValue(schema);
            if (schema.ValueKind is JsonValueKind.True or JsonValueKind.False) return JsonValue.Create(schema.GetBoolean());
            if (schema.ValueKind != JsonValueKind.Object || !Followable(schema, place)) return new JsonObject();
            if (schema.TryGetProperty("$ref", out var reference)) return Inline(schema, reference, target => Whole(target, place)) ?? new JsonObject();

            var result = new JsonObject();
            var alternatives = new List<JsonNode>();
            foreach (var keyword in schema.EnumerateObject())
            {
                var name = keyword.Name;
                var value = keyword.Value;
                if (Annotations.Contains(name) || KeptAssertions.Contains(name) || KeyAssertions.Contains(name))
                {
                    result[name] = Copy(value);
                    continue;
                }

                switch (name)
                {
                    case "enum" when KeepsValues(value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : []):
                    case "const" when KeepsValues([value]):
                        result[name] = Copy(value);
                        break;
                    case var _ when StringAssertions.Contains(name):
                        if (!_redact) result[name] = Copy(value);
                        break;
                    case "properties" when value.ValueKind == JsonValueKind.Object:
                        result[name] = Map(value, (property, sub) => Whole(sub, place.Property(property)));
                        break;
                    case "patternProperties" when value.ValueKind == JsonValueKind.Object:
                        result[name] = Map(value, (_, sub) => Whole(sub, place.AnyProperty()));
                        break;
                    case "additionalProperties":
                        result[name] = Whole(value, place.AnyProperty());
                        break;

                    // Names are never redacted; this only inlines its $refs (and may loosen it, which is harmless).
                    case "propertyNames":
                        result[name] = Whole(value, place.SameValue());
                        break;
                    case "dependentSchemas" when value.ValueKind == JsonValueKind.Object:
                        result[name] = Map(value, (_, sub) => Whole(sub, place.SameValue()));
                        break;
                    case "dependencies" when value.ValueKind == JsonValueKind.Object:
                        result[name] = Map(value, (_, sub) => sub.ValueKind == JsonValueKind.Array ? Copy(sub)! : Whole(sub, place.SameValue()));
                        break;
                    case "items" or "additionalItems":
                        result[name] = value.ValueKind == JsonValueKind.Array ? Each(value, sub => Whole(sub, place.Item())) : Whole(value, place.Item());
                        break;
                    case "prefixItems" when value.ValueKind == JsonValueKind.Array:
                        result[name] = Each(value, sub => Whole(sub, place.Item()));
                        break;

                    // Capped arrays may lose the items these count; equal items may appear once redacted. (maxContains
                    // goes too: a loosened contains may match more items.)
                    case "minItems" or "minContains" when !_cap:
                    case "uniqueItems" when !_redact:
                        result[name] = Copy(value);
                        break;
                    case "contains" when !_cap:
                        result[name] = Whole(value, place.Item());
                        break;

                    case "allOf" or "anyOf" when value.ValueKind == JsonValueKind.Array:
                        result[name] = Each(value, sub => Whole(sub, place.SameValue()));
                        break;

                    // Loosening inside these would tighten them: a changed value, or a loosened branch (a recursive
                    // $ref left open), may match more than one branch, or the condition's other side, or what it
                    // must not match. So oneOf becomes anyOf, if/then/else the anyOf of its branches, and not goes.
                    case "oneOf" when value.ValueKind == JsonValueKind.Array:
                        alternatives.Add(new JsonObject { ["anyOf"] = Each(value, sub => Whole(sub, place.SameValue())) });
                        break;
                    case "if" when schema.TryGetProperty("then", out var then) && schema.TryGetProperty("else", out var otherwise):
                        alternatives.Add(new JsonObject { ["anyOf"] = new JsonArray(Whole(then, place.SameValue()), Whole(otherwise, place.SameValue())) });
                        break;

                    // $defs are inlined where used, unevaluated* depend on annotations the inlining may lose, and
                    // anything else is not known to hold after shaping.
                    default:
                        break;
                }
            }

            if (alternatives.Count > 0)
            {
                var all = result["allOf"] as JsonArray ?? [];
                foreach (var alternative in alternatives) all.Add(alternative);
                result["allOf"] = all;
            }

            if (_redact && redactor!.DetectsPii && MayBeCardNumber(result)) AddType(result, "string");
            return _redact && place.Kind == PlaceKind.AnyProperty ? AllowString(result) : result;
        }

        /// <summary>
        /// A value the projection goes into, or null when it can never be there (the shaper selects nothing from a
        /// string, say). Only objects, arrays and nulls survive a pointer that goes deeper.
        /// </summary>
        private JsonNode? Projected(JsonElement schema, Selection selection, Place place)
        {
            if (selection.Whole) return Whole(schema, place);
            if (!Spend() || place.Depth >= Redactor.MaxDepth) return new JsonObject();
            if (_redact && place.Kind == PlaceKind.Property && Redactor.IsSecretName(place.Name)) return SecretValue(schema);
            if (schema.ValueKind == JsonValueKind.False) return false;
            if (schema.ValueKind != JsonValueKind.Object || !Followable(schema, place) || Combines(schema)) return new JsonObject();
            if (schema.TryGetProperty("$ref", out var reference)) return Inline(schema, reference, target => Projected(target, selection, place));

            var types = Types(schema);
            var result = new JsonObject();
            foreach (var annotation in (string[])["title", "description"])
            {
                if (schema.TryGetProperty(annotation, out var text)) result[annotation] = Copy(text);
            }

            var kept = new JsonArray();
            if (types?.Contains("object") is not false)
            {
                ProjectObject(schema, selection, place, result);
                kept.Add("object");
            }

            if (types?.Contains("array") is not false && (selection.Any is not null || selection.HasIndex))
            {
                if (!selection.HasIndex) ProjectArray(schema, selection.Any!, place, result);
                kept.Add("array");
            }

            if (types?.Contains("null") is not false) kept.Add("null");
            if (kept.Count == 0) return null;
            result.Insert(0, "type", kept.Count == 1 ? kept[0]!.DeepClone() : kept);
            return _redact && place.Kind == PlaceKind.AnyProperty ? AllowString(result) : result;
        }

        private void ProjectObject(JsonElement schema, Selection selection, Place place, JsonObject result)
        {
            var declared = schema.TryGetProperty("properties", out var p) && p.ValueKind == JsonValueKind.Object ? p : default;
            var additional = schema.TryGetProperty("additionalProperties", out var a) ? a : default;
            var patterned = schema.TryGetProperty("patternProperties", out var pp) && pp.ValueKind == JsonValueKind.Object && pp.EnumerateObject().Any();
            var closed = additional.ValueKind == JsonValueKind.False;
            var required = schema.TryGetProperty("required", out var r) && r.ValueKind == JsonValueKind.Array
                ? r.EnumerateArray().Where(n => n.ValueKind == JsonValueKind.String).Select(n => n.GetString()!).ToHashSet(StringComparer.Ordinal)
                : [];

            var properties = new JsonObject();
            var keep = new JsonArray();
            if (declared.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in declared.EnumerateObject())
                {
                    if (selection.For(property.Name) is not { } below) continue;
                    if (Projected(property.Value, below, place.Property(property.Name)) is not { } child) continue;
                    properties[property.Name] = child;
                    if (required.Contains(property.Name) && AlwaysSelected(property.Value, below, 0)) keep.Add(property.Name);
                }
            }

            // A name the pointers give that the schema does not declare: whatever admits unknown names describes it.
            foreach (var name in selection.Named.Keys)
            {
                if (properties.ContainsKey(name) || (declared.ValueKind == JsonValueKind.Object && declared.TryGetProperty(name, out _))) continue;
                if (patterned)
                {
                    properties[name] = new JsonObject();
                    continue;
                }

                if (closed) continue;
                var value = additional.ValueKind == JsonValueKind.Undefined ? OpenSchema : additional;
                if (Projected(value, selection.For(name)!, place.Property(name)) is { } child) properties[name] = child;
            }

            if (properties.Count > 0) result["properties"] = properties;
            if (keep.Count > 0) result["required"] = keep;

            // Without a * no other name is selected; with one, every other name is, as additionalProperties says. Names
            // that match a pattern are not told apart from the others: with patterns, other names are left open.
            if (patterned) return;
            if (closed) result["additionalProperties"] = false;
            else if (selection.Any is not null && additional.ValueKind != JsonValueKind.Undefined)
            {
                result["additionalProperties"] = Projected(additional, selection.Any, place.AnyProperty()) ?? false;
            }

            if (schema.TryGetProperty("maxProperties", out var max)) result["maxProperties"] = Copy(max);
        }

        private void ProjectArray(JsonElement schema, Selection items, Place place, JsonObject result)
        {
            if (schema.TryGetProperty("prefixItems", out var prefix) && prefix.ValueKind == JsonValueKind.Array)
            {
                result["prefixItems"] = Each(prefix, sub => ProjectedItem(sub, items, place));
            }

            if (schema.TryGetProperty("items", out var all))
            {
                result["items"] = all.ValueKind == JsonValueKind.Array ? Each(all, sub => ProjectedItem(sub, items, place)) : ProjectedItem(all, items, place);
            }

            if (schema.TryGetProperty("additionalItems", out var more)) result["additionalItems"] = ProjectedItem(more, items, place);
            if (schema.TryGetProperty("maxItems", out var max)) result["maxItems"] = Copy(max);
            if (!_cap && schema.TryGetProperty("minItems", out var min)) result["minItems"] = Copy(min);
        }

        /// <summary>An item under a <c>*</c>: where the pointer may not reach it, the shaper's placeholder <c>{}</c> stands in.</summary>
        private JsonNode ProjectedItem(JsonElement schema, Selection selection, Place place)
        {
            var item = Projected(schema, selection, place.Item());
            if (item is null) return new JsonObject { ["type"] = "object", ["maxProperties"] = 0 };
            if (selection.Whole || AlwaysSelected(schema, selection, 0) || item is not JsonObject placeholderSafe) return item;

            placeholderSafe.Remove("required");
            if (placeholderSafe["type"] is { } type && !TypeIncludes(type, "object")) AddType(placeholderSafe, "object");
            return placeholderSafe;
        }

        /// <summary>
        /// Whether the projection always selects something from a value conforming to <paramref name="schema"/>:
        /// only then does a property it was required to have stay required. Conservative: false when unsure.
        /// </summary>
        private bool AlwaysSelected(JsonElement schema, Selection selection, int hops)
        {
            if (selection.Whole) return true;
            if (hops > 32 || schema.ValueKind != JsonValueKind.Object || Combines(schema)) return false;
            if (schema.TryGetProperty("$ref", out var reference)) return Resolve(reference) is { } target && AlwaysSelected(target, selection, hops + 1);

            var types = Types(schema);
            if (types is not { Count: 1 }) return false;
            if (types.Contains("array")) return selection.Any is not null;
            if (!types.Contains("object")) return false;
            if (selection.Any is not null) return true;

            // Some required property the pointers name, which itself always yields something.
            if (!schema.TryGetProperty("required", out var required) || required.ValueKind != JsonValueKind.Array) return false;
            if (!schema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object) return false;
            return required.EnumerateArray().Any(name =>
                name.ValueKind == JsonValueKind.String && selection.Named.TryGetValue(name.GetString()!, out var below)
                && properties.TryGetProperty(name.GetString()!, out var property) && AlwaysSelected(property, below, hops + 1));
        }

        /// <summary>Inlines a local <c>$ref</c>; one it cannot resolve, or one it is already inside, becomes <c>{}</c>.</summary>
        private JsonNode? Inline(JsonElement schema, JsonElement reference, Func<JsonElement, JsonNode?> derive)
        {
            if (reference.ValueKind != JsonValueKind.String || Resolve(reference) is not { } target) return new JsonObject();
            var key = reference.GetString()!;
            if (_expanding.Count > MaxInlined || !_expanding.Add(key)) return new JsonObject();
            try
            {
                // Keywords beside the $ref are dropped: that only loosens, and draft 7 ignores them anyway.
                var inlined = derive(target);
                if (inlined is JsonObject result && schema.TryGetProperty("description", out var description) && !result.ContainsKey("description"))
                {
                    result["description"] = Copy(description);
                }

                return inlined;
            }
            finally
            {
                _expanding.Remove(key);
            }
        }

        /// <summary>The subschema a local reference (<c>#</c> or <c>#/json/pointer</c>) names in the declared document.</summary>
        private JsonElement? Resolve(JsonElement reference)
        {
            var text = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : "";
            if (text == "#") return document;
            if (!text.StartsWith("#/", StringComparison.Ordinal)) return null;

            var current = document;
            foreach (var raw in Uri.UnescapeDataString(text[2..]).Split('/'))
            {
                var segment = raw.Replace("~1", "/").Replace("~0", "~");
                if (current.ValueKind == JsonValueKind.Object && current.TryGetProperty(segment, out var next)) current = next;
                else if (current.ValueKind == JsonValueKind.Array && int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < current.GetArrayLength()) current = current[i];
                else return null;
            }

            return current;
        }

        /// <summary>Whether the enum or const values are scalars the redactor leaves alone (containers hold arrays a cap may shorten).</summary>
        private bool KeepsValues(IEnumerable<JsonElement> values) => values.All(value =>
            value.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array)
            && (redactor is null || redactor.Redact(value).GetRawText() == value.GetRawText()));

        /// <summary>Whether a number here might be a card number: 13 or more digits, which a maximum can rule out.</summary>
        private static bool MayBeCardNumber(JsonObject schema)
        {
            if (schema["type"] is not { } type || !TypeIncludes(type, "number")) return false;
            return !(IsAtMost(schema["maximum"], BelowCardNumbers) || IsAtMost(schema["exclusiveMaximum"], BelowCardNumbers + 1));

            static bool IsAtMost(JsonNode? bound, double limit) =>
                bound is JsonValue value && value.TryGetValue<double>(out var number) && number <= limit;
        }

        /// <summary>Whether a subschema can be followed: it neither changes the base URI nor refers dynamically.</summary>
        private static bool Followable(JsonElement schema, Place place) =>
            !schema.TryGetProperty("$dynamicRef", out _) && !schema.TryGetProperty("$recursiveRef", out _)
            && (place.Kind == PlaceKind.Root || !schema.TryGetProperty("$id", out _));

        /// <summary>Keywords that combine subschemas for one value: a projection does not follow pointers through them.</summary>
        private static bool Combines(JsonElement schema) =>
            schema.TryGetProperty("allOf", out _) || schema.TryGetProperty("anyOf", out _) || schema.TryGetProperty("oneOf", out _)
            || schema.TryGetProperty("not", out _) || schema.TryGetProperty("if", out _) || schema.TryGetProperty("dependentSchemas", out _)
            || (schema.TryGetProperty("dependencies", out var dependencies) && dependencies.ValueKind == JsonValueKind.Object
                && dependencies.EnumerateObject().Any(d => d.Value.ValueKind != JsonValueKind.Array));

        /// <summary>Whether another subschema may be visited: within budget and with stack to spare.</summary>
        private bool Spend() => --_budget >= 0 && RuntimeHelpers.TryEnsureSufficientExecutionStack();
    }

    private static readonly JsonElement OpenSchema = JsonDocument.Parse("true").RootElement.Clone();

    /// <summary>A value under a secret-looking name: the redactor leaves null and replaces anything else with a marker string.</summary>
    private static JsonObject SecretValue(JsonElement declared)
    {
        var result = new JsonObject();
        if (declared.ValueKind == JsonValueKind.Object && declared.TryGetProperty("description", out var description)) result["description"] = Copy(description);
        result["type"] = new JsonArray("string", "null");
        return result;
    }

    /// <summary>A schema that also accepts any string (a redaction marker), as loosely as it must.</summary>
    private static JsonNode AllowString(JsonNode schema)
    {
        if (schema is not JsonObject result) return schema;
        if (result.ContainsKey("allOf") || result.ContainsKey("anyOf"))
        {
            return new JsonObject { ["anyOf"] = new JsonArray(result, new JsonObject { ["type"] = "string" }) };
        }

        result.Remove("enum");
        result.Remove("const");
        if (result.ContainsKey("type")) AddType(result, "string");
        return result;
    }

    private static void AddType(JsonObject schema, string type)
    {
        var types = schema["type"] switch
        {
            JsonArray list => list.Select(t => t is JsonValue v && v.TryGetValue<string>(out var name) ? name : null).OfType<string>().ToList(),
            JsonValue one when one.TryGetValue<string>(out var name) => [name],
            _ => [],
        };
        if (types.Contains(type)) return;
        types.Add(type);
        schema["type"] = new JsonArray([.. types.Select(t => (JsonNode)t)]);
    }

    /// <summary>A property the shaper may add: alone if the schema has none of that name, else as an alternative to it.</summary>
    private static void AddAlternative(JsonObject properties, string name, JsonObject marker)
    {
        properties[name] = properties.ContainsKey(name) ? new JsonObject { ["anyOf"] = new JsonArray(Detach(properties, name), marker) } : marker;
    }

    private static JsonNode? Detach(JsonObject parent, string name)
    {
        var node = parent[name];
        parent.Remove(name);
        return node;
    }

    private static bool TypeIncludes(JsonNode type, string name) => type switch
    {
        JsonArray list => list.Any(t => t is JsonValue v && v.TryGetValue<string>(out var s) && (s == name || (name == "number" && s == "integer"))),
        JsonValue one => one.TryGetValue<string>(out var s) && (s == name || (name == "number" && s == "integer")),
        _ => false,
    };

    /// <summary>The declared types, or null when any type is allowed.</summary>
    private static HashSet<string>? Types(JsonElement schema)
    {
        if (!schema.TryGetProperty("type", out var type)) return null;
        return type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array => type.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString()!).ToHashSet(StringComparer.Ordinal),
            _ => null,
        };
    }

    private static JsonObject Map(JsonElement obj, Func<string, JsonElement, JsonNode?> derive)
    {
        var result = new JsonObject();
        foreach (var property in obj.EnumerateObject()) result[property.Name] = derive(property.Name, property.Value);
        return result;
    }

    private static JsonArray Each(JsonElement array, Func<JsonElement, JsonNode?> derive) => new([.. array.EnumerateArray().Select(derive)]);

    private static JsonNode? Copy(JsonElement value) => JsonNode.Parse(value.GetRawText(), documentOptions: DeepDocument);
}
