using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace ControlPlane.Cli;

/// <summary>The server answered with an error status, or could not be reached; carries the exit code it maps to.</summary>
public sealed class CliFailure(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Thin client for /api/v1: the operator key as a bearer token, errors mapped to exit codes and readable messages.</summary>
internal sealed class ApiClient(HttpClient http)
{
    public static ApiClient Create(Uri baseUrl, string key, HttpMessageHandler? handler)
    {
        var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.BaseAddress = baseUrl;
        http.Timeout = TimeSpan.FromSeconds(60);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("cpctl", "1"));
        return new ApiClient(http);
    }

    public Task<JsonElement> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    public Task<JsonElement> PostAsync(string path, object? body, CancellationToken ct) => SendAsync(HttpMethod.Post, path, body, ct);

    public Task<JsonElement> DeleteAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Delete, path, null, ct);

    /// <summary>Streams a response body (audit export) to <paramref name="target"/>.</summary>
    public async Task StreamAsync(string path, Stream target, CancellationToken ct)
    {
        using var response = await SendRawAsync(new HttpRequestMessage(HttpMethod.Get, path), HttpCompletionOption.ResponseHeadersRead, ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(target, ct);
    }

    private async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await SendRawAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (string.IsNullOrWhiteSpace(text)) return default;
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new CliFailure(ExitCodes.Unavailable, $"The server at {http.BaseAddress} did not answer with JSON; is --url pointing at ControlPlane?");
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new CliFailure(ExitCodes.Unavailable, $"Cannot reach {http.BaseAddress}: {ex.Message} (set --url or CONTROLPLANE_URL).");
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new CliFailure(ExitCodes.Unavailable, $"{http.BaseAddress} did not answer within {http.Timeout.TotalSeconds:0} s.");
        }

        if (response.IsSuccessStatusCode) return response;

        using (response)
        {
            var detail = await DescribeAsync(response, ct);
            throw response.StatusCode switch
            {
                HttpStatusCode.BadRequest => new CliFailure(ExitCodes.Usage, "Rejected: " + detail),
                HttpStatusCode.Unauthorized => new CliFailure(ExitCodes.Auth, "Not authenticated: pass an operator key with --key or CONTROLPLANE_OPERATOR_KEY."),
                HttpStatusCode.Forbidden => new CliFailure(ExitCodes.Auth, "Forbidden: " + detail),
                HttpStatusCode.NotFound => new CliFailure(ExitCodes.NotFound, "Not found: " + detail),
                HttpStatusCode.Conflict => new CliFailure(ExitCodes.Refused, "Conflict: " + detail),
                _ => new CliFailure(ExitCodes.Unavailable, $"The server failed ({(int)response.StatusCode}): {detail}"),
            };
        }
    }

    /// <summary>The problem details' detail and field errors, or the status line.</summary>
    private static async Task<string> DescribeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            var problem = JsonDocument.Parse(text).RootElement;
            var parts = new List<string>();
            if (problem.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String) parts.Add(detail.GetString()!);
            else if (problem.TryGetProperty("title", out var title) && title.ValueKind == JsonValueKind.String) parts.Add(title.GetString()!);
            if (problem.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in errors.EnumerateObject())
                {
                    parts.Add($"{field.Name}: {string.Join(" ", field.Value.EnumerateArray().Select(e => e.GetString()))}");
                }
            }

            if (parts.Count > 0) return string.Join(" ", parts);
        }
        catch (JsonException)
        {
        }

        return $"{(int)response.StatusCode} {response.ReasonPhrase}";
    }
}
