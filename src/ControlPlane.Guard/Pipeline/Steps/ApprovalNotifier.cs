using System.Net.Http.Json;
using System.Threading.Channels;
using ControlPlane.Approvals;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>
/// Tells people that an approval is waiting: a Slack-compatible webhook (<c>{"text": …}</c>) with a link to the
/// approval. Sent in the background so an agent's refusal never waits on a chat service; arguments are the
/// redacted ones, never a token.
/// </summary>
public sealed partial class ApprovalNotifier(IOptions<ConfirmationOptions> options, ILogger<ApprovalNotifier> logger) : BackgroundService
{
    private readonly Channel<ApprovalRequest> _pending = Channel.CreateBounded<ApprovalRequest>(new BoundedChannelOptions(1000) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public void Notify(ApprovalRequest request)
    {
        if (options.Value.WebhookUrl is not null) _pending.Writer.TryWrite(request);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var request in _pending.Reader.ReadAllAsync(stoppingToken))
        {
            var settings = options.Value;
            if (settings.WebhookUrl is not { } url) continue;

            var link = $"{settings.ApprovalLinkBase?.TrimEnd('/') ?? ""}/api/v1/approvals/{request.Id}";
            var text =
                $"Approval needed in tenant {request.TenantId}: agent {request.AgentId}" + (request.UserId is null ? "" : $" (for {request.UserId})") +
                $" wants to call {request.ServerId}/{request.ToolName} with {request.Arguments}. " +
                $"Approve or deny before {request.ExpiresAt:u}: {link}";
            try
            {
                using var response = await _http.PostAsJsonAsync(url, new { text, approval_id = request.Id, link }, stoppingToken);
                if (!response.IsSuccessStatusCode) LogRejected(logger, (int)response.StatusCode, request.Id);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                LogFailed(logger, ex, request.Id);
            }
        }
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The approval webhook answered {Status} for approval {ApprovalId}.")]
    private static partial void LogRejected(ILogger logger, int status, string approvalId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The approval webhook could not be reached for approval {ApprovalId}.")]
    private static partial void LogFailed(ILogger logger, Exception ex, string approvalId);
}
