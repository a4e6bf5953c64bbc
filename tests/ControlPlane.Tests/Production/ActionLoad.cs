using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Production;

/// <summary>What one action call looked like to its client.</summary>
public enum ActionStage
{
    /// <summary>The first call, without a token: should open an approval (REQUIRES_CONFIRMATION).</summary>
    Request,

    /// <summary>The call again with the approver's confirmation token: the one that may run.</summary>
    Redeem,

    /// <summary>The same token a second time: must never run.</summary>
    Replay,
}

/// <param name="Outcome">"success", a refusal code, "error" (an error result without a code) or "failed" (exception: outcome unknown).</param>
public sealed record ActionAttempt(long Amount, string? ApprovalId, ActionStage Stage, string Outcome, string? RefundId, DateTimeOffset Started, DateTimeOffset Ended, int Silo);

/// <summary>
/// Agents issuing refunds the way a human-in-the-loop flow does: call <c>create_refund</c>, get REQUIRES_CONFIRMATION,
/// have an operator approve it over REST, call again with the confirmation token, then replay the same token once
/// (which must be refused). Each approval refunds a unique amount, so a refund row identifies the call that made it.
/// Like <see cref="ClusterLoad"/>, a client whose silo dies opens a new session on the next silo that answers.
/// </summary>
public sealed class ActionLoad : IAsyncDisposable
{
    public const string Customer = "cust_DEMO00000001";
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(45);

    private readonly PostgresClusterFixture _cluster;
    private readonly IReadOnlyList<string> _tokens;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private long _nextAmount;
    private long _reconnects;
    private long _approvalsFailed;

    public ActionLoad(PostgresClusterFixture cluster, IReadOnlyList<string> agentTokens, long firstAmount)
    {
        _cluster = cluster;
        _tokens = agentTokens;
        _nextAmount = firstAmount - 1;
    }

    public ConcurrentQueue<ActionAttempt> Attempts { get; } = new();

    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Approvals the REST API would not grant (the approval grain or its audit could not be reached).</summary>
    public long ApprovalsFailed => Interlocked.Read(ref _approvalsFailed);

    public int Succeeded => Attempts.Count(a => a.Outcome == "success");

    public void Start()
    {
        for (var i = 0; i < _tokens.Count; i++)
        {
            var (token, home) = (_tokens[i], i % _cluster.Silos.Count);
            _running.Add(Task.Run(() => RunAsync(token, home)));
        }
    }

    public async Task WaitForSuccessesAsync(int more, TimeSpan timeout)
    {
        var target = Succeeded + more;
        var deadline = DateTime.UtcNow + timeout;
        while (Succeeded < target)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Fewer than {more} confirmed refunds within {timeout.TotalSeconds:F0} s.");
            await Task.Delay(200);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(TimeSpan.FromSeconds(90));
    }

    /// <summary>Opens an approval for a fresh amount and has it approved, without redeeming it: for redeeming later.</summary>
    public async Task<(long Amount, string ApprovalId, string Token)?> PrepareApprovedAsync(McpClient client, int silo)
    {
        var amount = Interlocked.Increment(ref _nextAmount);
        var result = await client.CallToolAsync("create_refund", Arguments(amount, null));
        var code = CodeOf(result);
        if (code != "REQUIRES_CONFIRMATION") return null;
        var approvalId = ControlPlane.Guard.Pipeline.Refusal.Read(result)!.Value.GetProperty("approval_id").GetString()!;
        var token = await ApproveAsync(approvalId, silo);
        return token is null ? null : (amount, approvalId, token);
    }

    /// <summary>One call with a confirmation token, recorded like the load's own.</summary>
    public async Task<ActionAttempt> RedeemAsync(McpClient client, int silo, long amount, string approvalId, string token, ActionStage stage)
    {
        var started = DateTimeOffset.UtcNow;
        ActionAttempt attempt;
        try
        {
            using var timeout = new CancellationTokenSource(CallTimeout);
            var result = await client.CallToolAsync("create_refund", Arguments(amount, token), cancellationToken: timeout.Token);
            attempt = Describe(result, amount, approvalId, stage, started, silo);
        }
        catch (Exception)
        {
            attempt = new ActionAttempt(amount, approvalId, stage, "failed", null, started, DateTimeOffset.UtcNow, silo);
        }

        Attempts.Enqueue(attempt);
        return attempt;
    }

    private async Task RunAsync(string token, int home)
    {
        McpClient? client = null;
        var silo = home;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                if (client is null)
                {
                    (client, silo) = await ConnectSomewhereAsync(token, home);
                    if (client is null)
                    {
                        await Delay(TimeSpan.FromMilliseconds(250));
                        continue;
                    }
                }

                if (!await OneApprovalAsync(client, silo))
                {
                    // The session's silo is gone (or the call timed out): a new session, elsewhere if need be.
                    await ClusterLoad.DisposeQuietlyAsync(client);
                    client = null;
                    Interlocked.Increment(ref _reconnects);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            if (client is not null) await ClusterLoad.DisposeQuietlyAsync(client);
        }
    }

    /// <summary>Request, approve, redeem, replay. False when the session broke.</summary>
    private async Task<bool> OneApprovalAsync(McpClient client, int silo)
    {
        var amount = Interlocked.Increment(ref _nextAmount);
        var started = DateTimeOffset.UtcNow;
        CallToolResult first;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(CallTimeout);
            first = await client.CallToolAsync("create_refund", Arguments(amount, null), cancellationToken: timeout.Token);
        }
        catch (Exception) when (!_stop.IsCancellationRequested)
        {
            Attempts.Enqueue(new ActionAttempt(amount, null, ActionStage.Request, "failed", null, started, DateTimeOffset.UtcNow, silo));
            return false;
        }

        var request = Describe(first, amount, null, ActionStage.Request, started, silo);
        Attempts.Enqueue(request);
        if (request.Outcome != "REQUIRES_CONFIRMATION")
        {
            // Refused for another reason (guard or audit unavailable): back off as retry_after asks, a little.
            await Delay(TimeSpan.FromMilliseconds(300));
            return true;
        }

        var approvalId = ControlPlane.Guard.Pipeline.Refusal.Read(first)!.Value.GetProperty("approval_id").GetString()!;
        var confirmation = await ApproveAsync(approvalId, (silo + 1) % _cluster.Silos.Count);
        if (confirmation is null || _stop.IsCancellationRequested) return true;

        var redeem = await RedeemAsync(client, silo, amount, approvalId, confirmation, ActionStage.Redeem);
        if (redeem.Outcome == "failed") return false;
        if (_stop.IsCancellationRequested) return true;
        var replay = await RedeemAsync(client, silo, amount, approvalId, confirmation, ActionStage.Replay);
        return replay.Outcome != "failed";
    }

    /// <summary>Approves on the given silo, or on the next one that answers; null if none would.</summary>
    public async Task<string?> ApproveAsync(string approvalId, int preferred)
    {
        for (var i = 0; i < _cluster.Silos.Count; i++)
        {
            var silo = _cluster.Silos[(preferred + i) % _cluster.Silos.Count];
            if (!silo.IsRunning) continue;
            try
            {
                using var http = _cluster.Operator(silo);
                http.Timeout = TimeSpan.FromSeconds(30);
                var response = await http.PostAsJsonAsync($"/api/v1/approvals/{approvalId}/approve", new { });
                if (response.IsSuccessStatusCode)
                {
                    var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                    return body.GetProperty("confirmationToken").GetString();
                }

                // A 4xx is the API's answer (say, already decided): asking another silo would not change it.
                if ((int)response.StatusCode < 500) break;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
        }

        Interlocked.Increment(ref _approvalsFailed);
        return null;
    }

    private static ActionAttempt Describe(CallToolResult result, long amount, string? approvalId, ActionStage stage, DateTimeOffset started, int silo)
    {
        var ended = DateTimeOffset.UtcNow;
        if (result.IsError is not true)
        {
            var refundId = result.StructuredContent?.TryGetProperty("refund_id", out var id) == true ? id.GetString() : null;
            return new ActionAttempt(amount, approvalId, stage, "success", refundId, started, ended, silo);
        }

        return new ActionAttempt(amount, approvalId, stage, CodeOf(result) ?? "error", null, started, ended, silo);
    }

    public static string? CodeOf(CallToolResult result) =>
        ControlPlane.Guard.Pipeline.Refusal.Read(result) is { } s && s.TryGetProperty("code", out var code)
            ? code.GetString()
            : null;

    public static Dictionary<string, object?> Arguments(long amount, string? confirmation)
    {
        var arguments = new Dictionary<string, object?> { ["customer_id"] = Customer, ["amount_cents"] = amount, ["reason"] = "requested" };
        if (confirmation is not null) arguments["confirmation_token"] = confirmation;
        return arguments;
    }

    private async Task<(McpClient? Client, int Silo)> ConnectSomewhereAsync(string token, int home)
    {
        for (var i = 0; i < _cluster.Silos.Count && !_stop.IsCancellationRequested; i++)
        {
            var silo = _cluster.Silos[(home + i) % _cluster.Silos.Count];
            if (!silo.IsRunning) continue;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(20));
                return (await PostgresClusterFixture.ConnectAsync(silo, token, timeout.Token), silo.Index);
            }
            catch (Exception) when (!_stop.IsCancellationRequested)
            {
            }
        }

        return (null, -1);
    }

    private async Task Delay(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }
}
