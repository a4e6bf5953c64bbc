using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Json.Schema.Keywords;

namespace ControlPlane.Guard.Schemas;

/// <summary>
/// <c>patternProperties</c>, with regexes from <see cref="SchemaRegex"/>. Its keys must run on the linear-time engine
/// whoever wrote the schema: the library matches every key against every property name inside one call, where the
/// budget cannot step in between matches.
/// </summary>
internal sealed class BoundedPatternPropertiesKeyword : PatternPropertiesKeyword
{
    public override object? ValidateKeywordValue(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new JsonSchemaException($"'{Name}' value must be an object, found {value.ValueKind}");

        var regexes = new Dictionary<string, Regex>(StringComparer.Ordinal);
        foreach (var property in value.EnumerateObject())
        {
            if (property.Value.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
            {
                throw new JsonSchemaException("Values must be valid schemas");
            }

            regexes[property.Name] = SchemaRegex.Create(property.Name, allowBacktracking: false, Name);
        }

        return regexes;
    }

    public override KeywordEvaluation Evaluate(KeywordData keyword, EvaluationContext context)
    {
        if (context.Instance.ValueKind != JsonValueKind.Object) return KeywordEvaluation.Ignore;
        var pointer = context.InstanceLocation.ToString();
        SchemaBudget.Check(pointer);
        foreach (var property in context.Instance.EnumerateObject()) SchemaBudget.CheckMatch(property.Name, pointer);
        try
        {
            return base.Evaluate(keyword, context);
        }
        catch (RegexMatchTimeoutException ex)
        {
            throw new SchemaBudgetExceededException(pointer, ex);
        }
    }
}
