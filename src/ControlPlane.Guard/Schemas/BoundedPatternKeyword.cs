using System.Text.Json;
using System.Text.RegularExpressions;
using Json.Schema;
using Json.Schema.Keywords;

namespace ControlPlane.Guard.Schemas;

/// <summary><c>pattern</c>, with a regex from <see cref="SchemaRegex"/> and each match within the validation's budget.</summary>
internal sealed class BoundedPatternKeyword(bool allowBacktracking) : PatternKeyword
{
    public override object? ValidateKeywordValue(JsonElement value)
    {
        if (value.ValueKind is not JsonValueKind.String) throw new JsonSchemaException($"'{Name}' value must be a string, found {value.ValueKind}");
        return SchemaRegex.Create(value.GetString()!, allowBacktracking, Name);
    }

    public override KeywordEvaluation Evaluate(KeywordData keyword, EvaluationContext context)
    {
        if (context.Instance.ValueKind is not JsonValueKind.String) return KeywordEvaluation.Ignore;
        var pointer = context.InstanceLocation.ToString();
        SchemaBudget.Check(pointer);
        if (context.Instance.GetString()!.Length > SchemaRegex.MaxMatchedLength)
        {
            // Not matched at all (the match's cost grows with the length): this value fails, the others are still checked.
            return new KeywordEvaluation
            {
                Keyword = Name,
                IsValid = false,
                Error = $"The value is longer than {SchemaRegex.MaxMatchedLength} characters, the most a pattern is checked against.",
            };
        }

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
