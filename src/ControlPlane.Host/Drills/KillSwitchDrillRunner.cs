using System.Text.Json;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Writing;
using ControlPlane.Drills;
using ControlPlane.Guard.Authentication;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Tenants;
using ControlPlane.Tokens;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Host.Drills;

/// <summary>
/// One drill, end to end and for real: a synthetic agent calls the synthetic probe tool through this silo's own
/// MCP endpoint (HTTP, agent token, the whole guard); the drill sets a kill switch on that agent's level, checks
/// that the next call is refused with KILLED at that level, clears the switch, and checks that calls resume.
/// The result goes into the audit of the drill tenant. Only synthetic targets are switched; a switch that was
/// already set on the target is never cleared by a drill.
/// </summary>
internal sealed partial class KillSwitchDrillRunner(
    IGrainFactory grains,
    IServer server,
    AuditWriter audit,
    IOptions<DrillOptions> options,
    TimeProvider time,
    TokenIds tokenIds,
    ILogger<KillSwitchDrillRunner> logger) : IKillSwitchDrillRunner
{
    public const string AgentId = "drill-agent";
    public const string UserId = "drill-user";
    public const string AuditKind = "drill/kill-switch";

    private IGuardStateGrain GuardState => grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);

    public async Task<DrillResult> ExecuteAsync(DrillLevel level, string ranBy, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var id = "drill_" + Guid.CreateVersion7().ToString("N")[..20];
        var started = time.GetUtcNow();
        var steps = new List<string>();
        string? failure = null;
        string? leftBehind = null;
        string? tokenId = null;

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.Timeout);
        var ct = timeout.Token;
        try
        {
            await grains.GetGrain<ITenantDirectoryGrain>(ITenantDirectoryGrain.Singleton)
                .CreateAsync(settings.TenantId, "Kill-switch drills (synthetic)", started);
            var (bearer, mintedId) = await MintAsync(settings.TenantId, id);
            tokenId = mintedId;

            await using var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = McpEndpoint(settings),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + bearer },
            }), cancellationToken: ct);

            var baseline = await ProbeAsync(client, ct);
            if (baseline is not null) throw new DrillFailedException($"Before the switch, the probe call was not allowed ({baseline}); the drill target is not clean.");
            steps.Add("probe allowed before the switch");

            var target = TargetFor(level, settings.TenantId, client.SessionId);
            var change = await GuardState.SetKillSwitchAsync(target, $"Kill-switch drill {id} ({level.ToWireName()} level, synthetic target); cleared by the drill.", "drill:" + ranBy);
            if (!change.Created)
            {
                throw new DrillFailedException($"A kill switch ({change.Switch.Id}, set by {change.Switch.SetBy}) already covers the drill target; it was left as it is.");
            }

            steps.Add($"switch {change.Switch.Id} set at the {level.ToWireName()} level");
            try
            {
                var killed = await ProbeAsync(client, ct);
                var expected = $"KILLED at scope {level.ToWireName()}";
                if (killed != expected)
                {
                    throw new DrillFailedException($"With the switch set, the probe call was {killed ?? "allowed"}; expected {expected}. The kill path at this level is broken.");
                }

                steps.Add("probe refused with " + expected);
            }
            finally
            {
                try
                {
                    // Not bound to the drill's timeout: the switch must come off even when the drill ran out of time.
                    var cleared = await GuardState.ClearKillSwitchAsync(change.Switch.Id, $"Kill-switch drill {id} over.", "drill:" + ranBy);
                    steps.Add(cleared is null ? "switch was already gone" : "switch cleared");
                }
                catch (Exception ex)
                {
                    leftBehind = change.Switch.Id;
                    LogClearFailed(logger, ex, change.Switch.Id, id);
                }
            }

            if (leftBehind is not null) throw new DrillFailedException($"The drill could not clear switch {leftBehind}; clear it by hand.");

            var resumed = await ProbeAsync(client, ct);
            if (resumed is not null) throw new DrillFailedException($"After the switch was cleared, the probe call was {resumed}; calls did not resume.");
            steps.Add("probe allowed after the clear");
        }
        catch (DrillFailedException ex)
        {
            failure = ex.Message;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            failure = $"The drill did not finish within {settings.Timeout.TotalSeconds:0} s.";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Anything else (the endpoint unreachable, grains down) is a failed drill, not a crashed scheduler.
            failure = $"The drill could not run: {ex.GetType().Name}: {ex.Message}";
        }
        finally
        {
            if (tokenId is not null) await TryRevokeAsync(tokenId);
        }

        var result = new DrillResult(id, level, failure is null, started, time.GetUtcNow(), ranBy, [.. steps], failure, leftBehind);
        await RecordAsync(result, settings.TenantId);
        return result;
    }

    private static KillTarget TargetFor(DrillLevel level, string tenantId, string? sessionId) => level switch
    {
        DrillLevel.Session => new KillTarget(KillScope.Session, SessionId: sessionId ?? throw new DrillFailedException("The drill's MCP session has no id.")),
        DrillLevel.User => new KillTarget(KillScope.User, TenantId: tenantId, UserId: UserId),
        DrillLevel.Agent => new KillTarget(KillScope.Agent, TenantId: tenantId, AgentId: AgentId),
        DrillLevel.Tenant => new KillTarget(KillScope.Tenant, TenantId: tenantId),
        DrillLevel.Tool => new KillTarget(KillScope.Tool, ServerId: DrillToolSource.ServerId, ToolName: DrillToolSource.ToolName),
        DrillLevel.Server => new KillTarget(KillScope.Server, ServerId: DrillToolSource.ServerId),
        DrillLevel.Global => KillTarget.Global,
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    /// <summary>Calls the probe; null when it was allowed and answered, otherwise what happened instead.</summary>
    private static async Task<string?> ProbeAsync(McpClient client, CancellationToken ct)
    {
        CallToolResult result = await client.CallToolAsync(DrillToolSource.PublicName, new Dictionary<string, object?>(), cancellationToken: ct);
        if (result.IsError is not true) return null;
        if (Guard.Pipeline.Refusal.Read(result) is { } refusal && refusal.TryGetProperty("code", out var code))
        {
            return refusal.TryGetProperty("scope", out var scope) ? $"{code.GetString()} at scope {scope.GetString()}" : code.GetString();
        }

        return "an error result";
    }

    private async Task<(string Bearer, string Id)> MintAsync(string tenantId, string drillId)
    {
        var now = time.GetUtcNow();
        var (id, bearer, hash) = SecretTokens.Create(SecretTokens.AgentPrefix, tokenIds.NewId());
        var token = new AgentToken(id, tenantId, AgentId, UserId, [$"server:{DrillToolSource.ServerId}:read"], hash, now, now + TimeSpan.FromMinutes(10), RevokedAt: null, "drill:" + drillId);
        // Not added to the tenant's token list: a daily drill would grow it by thousands a year. The token lives
        // ten minutes, never leaves this process, is scoped to the probe alone and is revoked when the drill ends.
        await grains.GetGrain<IAgentTokenGrain>(id).CreateAsync(token);
        return (bearer, id);
    }

    private async Task TryRevokeAsync(string tokenId)
    {
        try
        {
            var at = time.GetUtcNow();
            await GuardState.RevokeTokenAsync(tokenId, at + TimeSpan.FromMinutes(10));
            await grains.GetGrain<IAgentTokenGrain>(tokenId).RevokeAsync(at);
        }
        catch (Exception ex)
        {
            // The token is short-lived and scoped to the probe alone; it expires on its own.
            LogRevokeFailed(logger, ex, tokenId);
        }
    }

    private async Task RecordAsync(DrillResult result, string tenantId)
    {
        try
        {
            await audit.AppendAsync(new AuditEntry
            {
                Id = result.Id,
                Timestamp = result.FinishedAt,
                TenantId = tenantId,
                AgentId = AgentId,
                UserId = UserId,
                Kind = AuditKind,
                Server = DrillToolSource.ServerId,
                Tool = DrillToolSource.ToolName,
                Decision = "allowed",
                Outcome = result.Passed ? "success" : "error",
                ErrorType = result.Passed ? null : "drill_failed",
                LatencyMs = (result.FinishedAt - result.StartedAt).TotalMilliseconds,
                Detail = $"{result.Level.ToWireName()} drill by {result.RanBy} {(result.Passed ? "passed" : "FAILED")}: " +
                    string.Join("; ", result.Steps) + (result.Failure is null ? "" : " | " + result.Failure),
            });
        }
        catch (AuditUnavailableException ex)
        {
            LogAuditFailed(logger, ex, result.Id);
        }
    }

    private Uri McpEndpoint(DrillOptions settings)
    {
        if (settings.McpUrl is { } configured) return new Uri(configured);
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var address = addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
            ?? addresses.FirstOrDefault()
            ?? throw new DrillFailedException("This host has no listening address to call; set ControlPlane:Drills:McpUrl.");
        var uri = new UriBuilder(address.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal));
        if (uri.Host is "0.0.0.0" or "[::]" or "::" or "localhost") uri.Host = "127.0.0.1";
        uri.Path = "/mcp";
        return uri.Uri;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Drill {DrillId} could not clear its kill switch {SwitchId}; clear it by hand.")]
    private static partial void LogClearFailed(ILogger logger, Exception ex, string switchId, string drillId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not revoke drill token {TokenId}; it expires within 10 minutes.")]
    private static partial void LogRevokeFailed(ILogger logger, Exception ex, string tokenId);

    [LoggerMessage(Level = LogLevel.Error, Message = "The result of drill {DrillId} could not be written to the audit.")]
    private static partial void LogAuditFailed(ILogger logger, Exception ex, string drillId);

    private sealed class DrillFailedException(string message) : Exception(message);
}
