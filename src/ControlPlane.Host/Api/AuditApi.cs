using System.Globalization;
using System.Text;
using System.Text.Json;
using ControlPlane.Audit.Model;
using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;

namespace ControlPlane.Host.Api;

/// <summary>Audit queries, streaming export (JSON Lines or CSV) and chain verification.</summary>
internal static class AuditApi
{
    public static RouteGroupBuilder MapAuditApi(this RouteGroupBuilder api)
    {
        var audit = api.MapGroup("/audit");
        audit.MapGet("", async (HttpContext http, AuditService service) =>
        {
            var query = await service.BuildQueryAsync(http.User.Operator(), http.Request.Query);
            var page = await service.QueryAsync(query, http.RequestAborted);

            // Every field is written, null included: clients and auditors should see "code": null, not guess.
            return Results.Json(new { items = page.Items.Select(AuditItem.From), nextCursor = page.NextCursor }, CompleteJson);
        });

        audit.MapGet("/export", (HttpContext http, AuditService service) => ExportAsync(http, service, http.User.Operator()));

        audit.MapGet("/verify", async (string? tenantId, HttpContext http, AuditService service) =>
        {
            var result = await service.VerifyAsync(http.User.Operator(), tenantId, http.RequestAborted);
            return new { ok = result.Ok, @checked = result.Checked, firstBroken = result.FirstBroken, problem = result.Problem };
        });
        return api;
    }

    /// <summary>Streams the filtered audit as JSONL or CSV; shared by the API and the console's export link.</summary>
    internal static async Task<IResult> ExportAsync(HttpContext http, AuditService service, ControlPlane.Operators.OperatorAccount by)
    {
        var format = http.Request.Query["format"].ToString() is { Length: > 0 } f ? f : "jsonl";
        if (format is not ("jsonl" or "csv")) throw InvalidRequestException.For("format", "Use 'jsonl' or 'csv'.");
        var query = await service.BuildQueryAsync(by, http.Request.Query);

        http.Response.ContentType = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"audit.{format}\"";
        await using var writer = new StreamWriter(http.Response.Body, new UTF8Encoding(false), bufferSize: 64 * 1024);
        if (format == "csv") await writer.WriteLineAsync(string.Join(',', AuditItem.CsvColumns));
        await foreach (var record in service.ExportAsync(query, http.RequestAborted))
        {
            var item = AuditItem.From(record);
            await writer.WriteLineAsync(format == "csv" ? item.ToCsv() : JsonSerializer.Serialize(item, JsonOptions));
        }

        return Results.Empty;
    }

    private static readonly JsonSerializerOptions CompleteJson = new(JsonSerializerDefaults.Web);

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>An audit record as the API shows it.</summary>
internal sealed record AuditItem(
    string Id, DateTimeOffset Timestamp, string TenantId, string? AgentId, string? UserId, string? SessionId, string? TokenId,
    string Kind, string? Server, string? Tool, JsonElement? Arguments, string? ArgumentsHash, string Decision, string? Code,
    string Outcome, string? ErrorType, string? ResultHash, long? ResultSize, double? LatencyMs, string? ConfirmationId,
    string? Silo, string? Detail, long Sequence, string Hash, string PreviousHash)
{
    public static readonly string[] CsvColumns =
    [
        "id", "timestamp", "tenantId", "agentId", "userId", "sessionId", "tokenId", "kind", "server", "tool", "arguments", "argumentsHash",
        "decision", "code", "outcome", "errorType", "resultHash", "resultSize", "latencyMs", "confirmationId", "silo", "detail", "sequence", "hash", "previousHash",
    ];

    public static AuditItem From(AuditRecord record)
    {
        var e = record.Entry;
        JsonElement? arguments = null;
        if (e.Arguments is { } json)
        {
            using var document = JsonDocument.Parse(json);
            arguments = document.RootElement.Clone();
        }

        return new AuditItem(e.Id, e.Timestamp, e.TenantId, e.AgentId, e.UserId, e.SessionId, e.TokenId, e.Kind, e.Server, e.Tool, arguments,
            e.ArgumentsHash, e.Decision, e.Code, e.Outcome, e.ErrorType, e.ResultHash, e.ResultSize, e.LatencyMs, e.ConfirmationId, e.Silo, e.Detail,
            record.Sequence, record.Hash, record.PreviousHash);
    }

    public string ToCsv()
    {
        string?[] values =
        [
            Id, Timestamp.ToString("O", CultureInfo.InvariantCulture), TenantId, AgentId, UserId, SessionId, TokenId, Kind, Server, Tool,
            Arguments?.GetRawText(), ArgumentsHash, Decision, Code, Outcome, ErrorType, ResultHash,
            ResultSize?.ToString(CultureInfo.InvariantCulture), LatencyMs?.ToString("0.###", CultureInfo.InvariantCulture), ConfirmationId, Silo, Detail,
            Sequence.ToString(CultureInfo.InvariantCulture), Hash, PreviousHash,
        ];
        return string.Join(',', values.Select(Escape));
    }

    /// <summary>RFC 4180 quoting, and a leading quote for cells a spreadsheet would run as a formula.</summary>
    private static string Escape(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@') value = "'" + value;
        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }
}
