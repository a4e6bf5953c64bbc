using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Audit.Redaction;
using ControlPlane.Policy;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Guard.Results;

/// <summary>Result settings, bound from <c>ControlPlane:Results</c>.</summary>
public sealed class ResultOptions
{
    public const string SectionName = "ControlPlane:Results";

    /// <summary>Redact PII from read tools' results unless a tool's projection says otherwise.</summary>
    public bool RedactPiiByDefault { get; set; } = true;
}

/// <summary>
/// Read tools that lie a little: a read result is projected to the fields an operator allowed, arrays are
/// capped, oversized results are cut with an explicit marker, and PII is redacted, in structuredContent and
/// in text blocks that hold JSON, before anything leaves the control plane.
/// </summary>
public sealed class ResultShaper
{
    public const string TruncatedMarker = "_truncated";

    private readonly Redactor redactor;
    private readonly IOptions<ResultOptions> options;

    public ResultShaper(Redactor redactor, IOptions<ResultOptions> options)
    {
        this.redactor = redactor;
        this.options = options;
        Advertised = new AdvertisedTools(redactor, Redacts);
    }

    /// <summary>The tool definitions to list, with the outputSchema that this shaper's results validate against.</summary>
    public AdvertisedTools Advertised { get; }

    /// <summary>
    /// Any guarded request's result: a tool's (projection and redaction), a resource's text contents and a prompt's
    /// text messages (redaction; they have no projection). Blobs, images and audio pass as they are.
    /// </summary>
    public Result Shape(Result result, ProjectionSetting? projection) => result switch
    {
        CallToolResult tool => Shape(tool, projection),
        ReadResourceResult resource => Shape(resource),
        GetPromptResult prompt => Shape(prompt),
        CompleteResult completion => Shape(completion),
        _ => result,
    };

    private ReadResourceResult Shape(ReadResourceResult result)
    {
        if (!options.Value.RedactPiiByDefault) return result;
        var shaped = new ReadResourceResult { Meta = result.Meta, TimeToLive = result.TimeToLive, CacheScope = result.CacheScope };
        foreach (var contents in result.Contents)
        {
            shaped.Contents.Add(contents is TextResourceContents text
                ? new TextResourceContents { Uri = text.Uri, MimeType = text.MimeType, Meta = text.Meta, Text = ShapeText(text.Text, null, redact: true) }
                : contents);
        }

        return shaped;
    }

    private GetPromptResult Shape(GetPromptResult result)
    {
        if (!options.Value.RedactPiiByDefault) return result;
        var shaped = new GetPromptResult { Meta = result.Meta, Description = result.Description is null ? null : redactor.RedactText(result.Description) };
        foreach (var message in result.Messages)
        {
            shaped.Messages.Add(message.Content is TextContentBlock text
                ? new PromptMessage { Role = message.Role, Content = new TextContentBlock { Text = ShapeText(text.Text, null, redact: true), Annotations = text.Annotations } }
                : message);
        }

        return shaped;
    }

    private CompleteResult Shape(CompleteResult result)
    {
        if (!options.Value.RedactPiiByDefault) return result;
        var completion = result.Completion;
        return new CompleteResult
        {
            Meta = result.Meta,
            Completion = new Completion { Values = [.. completion.Values.Select(redactor.RedactText)], Total = completion.Total, HasMore = completion.HasMore },
        };
    }

    public CallToolResult Shape(CallToolResult result, ProjectionSetting? projection)
    {
        var redact = Redacts(projection);
        if (projection is null && !redact) return result;

        var shaped = new CallToolResult { IsError = result.IsError, Meta = result.Meta };
        if (result.StructuredContent is { } structured) shaped.StructuredContent = ShapeJson(structured, projection, redact);

        foreach (var block in result.Content)
        {
            if (block is TextContentBlock text)
            {
                shaped.Content.Add(new TextContentBlock { Text = ShapeText(text.Text, projection, redact), Annotations = text.Annotations });
            }
            else
            {
                shaped.Content.Add(block);
            }
        }

        return shaped;
    }

    private string ShapeText(string text, ProjectionSetting? projection, bool redact)
    {
        var trimmed = text.AsSpan().TrimStart();
        if (trimmed.Length > 0 && trimmed[0] is '{' or '[')
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                return ShapeJson(document.RootElement, projection, redact).GetRawText();
            }
            catch (JsonException)
            {
                // Not JSON after all: treat as prose.
            }
        }

        // Prose cannot be projected, and only the allowed fields may leave: a block that is not a JSON object
        // or array is withheld rather than passed whole (a tool could put the wide row in a sentence).
        if (projection is { Fields.Length: > 0 })
        {
            return $"[withheld by ControlPlane: this tool's results are limited to the fields {string.Join(", ", projection.Fields)}, and this block was not JSON]";
        }

        var result = redact ? redactor.RedactText(text) : text;
        if (projection?.MaxBytes is { } max && Encoding.UTF8.GetByteCount(result) > max)
        {
            result = TruncateUtf8(result, max) + $" …[truncated by ControlPlane: more than {max} bytes]";
        }

        return result;
    }

    private JsonElement ShapeJson(JsonElement value, ProjectionSetting? projection, bool redact)
    {
        // The common case, redaction without projection, works on the element itself: no JSON DOM round trip.
        if (projection is null) return redact ? redactor.Redact(value).Clone() : value;

        var node = JsonNode.Parse(value.GetRawText());
        var truncated = false;
        if (projection is { Fields.Length: > 0 }) node = Project(node, projection.Fields);
        if (projection?.MaxItems is { } maxItems) truncated |= CapArrays(node, maxItems);

        var element = JsonSerializer.SerializeToElement(node);
        if (redact) element = redactor.Redact(element).Clone();

        if (projection?.MaxBytes is { } maxBytes && element.GetRawText().Length > maxBytes)
        {
            element = JsonSerializer.SerializeToElement(new Dictionary<string, object>
            {
                [TruncatedMarker] = true,
                ["note"] = $"The result was larger than the {maxBytes} bytes this tool may return; narrow the request.",
            });
        }
        else if (truncated && element.ValueKind == JsonValueKind.Object)
        {
            var withMarker = JsonNode.Parse(element.GetRawText())!.AsObject();
            withMarker[TruncatedMarker] = true;
            element = JsonSerializer.SerializeToElement(withMarker);
        }

        return element;
    }

    /// <summary>Whether results shaped under this projection (or none) are redacted.</summary>
    internal bool Redacts(ProjectionSetting? projection) => projection?.RedactPii ?? options.Value.RedactPiiByDefault;

    /// <summary>A projection pointer's segments, unescaped (<c>~1</c> is <c>/</c>, <c>~0</c> is <c>~</c>).</summary>
    internal static string[] PointerSegments(string pointer) =>
        pointer.Split('/').Skip(1).Select(s => s.Replace("~1", "/").Replace("~0", "~")).ToArray();

    /// <summary>Keeps only the values at the allowed JSON pointers (<c>*</c> matches every array item or property).</summary>
    /// <remarks>
    /// Each pointer selects on its own and the selections are merged. A <c>*</c> over an array keeps every position, so
    /// the selections line up item by item: an item the pointer does not reach is held by an empty object. Those
    /// placeholders are tracked by reference, so that merging never lets one replace what another pointer kept.
    /// </remarks>
    private static JsonNode? Project(JsonNode? source, string[] pointers)
    {
        var placeholders = new HashSet<JsonNode>(ReferenceEqualityComparer.Instance);
        JsonNode? result = null;
        foreach (var pointer in pointers)
        {
            result = Merge(result, Select(source, PointerSegments(pointer), 0, placeholders), placeholders);
        }

        return result ?? new JsonObject();
    }

    private static JsonNode? Select(JsonNode? node, string[] segments, int index, HashSet<JsonNode> placeholders)
    {
        if (index == segments.Length) return node?.DeepClone();
        var segment = segments[index];
        // A pointer that ends in * keeps every property or item as it is, nulls included.
        var last = index + 1 == segments.Length;
        switch (node)
        {
            case JsonObject obj when segment == "*":
                var all = new JsonObject();
                foreach (var (key, child) in obj)
                {
                    var picked = Select(child, segments, index + 1, placeholders);
                    if (picked is not null || last) all[key] = picked;
                }

                return all;
            case JsonObject obj when obj.TryGetPropertyValue(segment, out var child):
                var inner = Select(child, segments, index + 1, placeholders);
                return inner is null && child is not null ? null : new JsonObject { [segment] = inner };
            case JsonArray array when segment == "*":
                return new JsonArray([.. array.Select(item => last ? item?.DeepClone() : Select(item, segments, index + 1, placeholders) ?? Placeholder(placeholders))]);
            case JsonArray array when int.TryParse(segment, out var i) && i >= 0 && i < array.Count:
                var list = new JsonArray();
                for (var k = 0; k < i; k++) list.Add(null);
                list.Add(Select(array[i], segments, index + 1, placeholders));
                return list;
            default:
                return null;
        }
    }

    private static JsonObject Placeholder(HashSet<JsonNode> placeholders)
    {
        var placeholder = new JsonObject();
        placeholders.Add(placeholder);
        return placeholder;
    }

    private static JsonNode? Merge(JsonNode? into, JsonNode? from, HashSet<JsonNode> placeholders)
    {
        if (from is not null && placeholders.Contains(from)) return into;
        if (into is not null && placeholders.Contains(into)) return from;
        if (into is null) return from;
        if (from is null) return into;
        if (into is JsonObject a && from is JsonObject b)
        {
            foreach (var (key, value) in b.ToList())
            {
                b.Remove(key);
                if (!a.TryGetPropertyValue(key, out var existing)) a[key] = value;
                else if (Merge(existing, value, placeholders) is var merged && !ReferenceEquals(merged, existing)) a[key] = merged;
            }

            return a;
        }

        if (into is JsonArray x && from is JsonArray y)
        {
            for (var i = 0; i < y.Count; i++)
            {
                var item = y[i];
                y[i] = null;
                if (i >= x.Count) x.Add(item);
                else if (Merge(x[i], item, placeholders) is var merged && !ReferenceEquals(merged, x[i])) x[i] = merged;
            }

            return x;
        }

        return from;
    }

    private static bool CapArrays(JsonNode? node, int maxItems)
    {
        var cut = false;
        switch (node)
        {
            case JsonArray array:
                while (array.Count > maxItems)
                {
                    array.RemoveAt(array.Count - 1);
                    cut = true;
                }

                foreach (var item in array) cut |= CapArrays(item, maxItems);
                break;
            case JsonObject obj:
                foreach (var (_, child) in obj) cut |= CapArrays(child, maxItems);
                break;
        }

        return cut;
    }

    private static string TruncateUtf8(string text, int maxBytes)
    {
        var length = Math.Min(text.Length, maxBytes);
        while (length > 0 && Encoding.UTF8.GetByteCount(text.AsSpan(0, length)) > maxBytes) length--;
        if (length > 0 && char.IsHighSurrogate(text[length - 1])) length--;
        return text[..length];
    }
}
