using ControlPlane.Availability;
using ControlPlane.Refusals;
using System.Security.Cryptography;
using System.Text;
using ControlPlane.Approvals;
using ControlPlane.Audit.Model;
using ControlPlane.Audit.Writing;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Grains.Approvals;

/// <summary>
/// One human approval: pending until an approver decides, then a short-lived, single-use confirmation
/// token bound to the tenant, agent, tool and the keyed hash of the exact arguments. Every transition is
/// audited with who made it.
/// </summary>
public sealed class ApprovalGrain(
    [PersistentState("approval", StorageNames.ControlPlane)] IPersistentState<ApprovalRecord> state,
    [FromKeyedServices(ControlPlaneClock.ServiceKey)] TimeProvider time,
    AuditWriter audit) : Grain, IApprovalGrain
{
    /// <summary>Long enough for a guard's two parallel durable writes, short enough that a guard that died holding it costs little.</summary>
    private static readonly TimeSpan ReservationLifetime = TimeSpan.FromSeconds(10);

    // In memory only: a reservation that a crash loses was never consumed, so the token stays usable.
    private string? _reservation;

    // Which reservation consumed the token, so that only that call can undo it if its action did not run after all.
    private string? _consumedBy;
    private DateTimeOffset _reservedUntil;

    public async Task<ApprovalView> OpenAsync(ApprovalRequest request)
    {
        if (state.State.Request is not null) throw new InvalidOperationException($"Approval {request.Id} already exists.");
        if (request.Id != this.GetPrimaryKeyString()) throw new ArgumentException("The approval id does not match the grain key.", nameof(request));

        // Audited before it exists: an approval nobody can account for must not be possible.
        state.State.Request = request;
        state.State.Status = ApprovalStatus.Pending;
        try
        {
            await AuditAsync("approval/requested", "allowed", "pending", request.AgentId, null);
            await WriteAsync("The approval request");
        }
        catch
        {
            state.State.Request = null;
            throw;
        }

        return View();
    }

    public async Task<ApprovalOpening> OpenReportingAsync(ApprovalRequest request)
    {
        try
        {
            return new ApprovalOpening(await OpenAsync(request), AuditUnavailable: false);
        }
        catch (StoreUnavailableException ex) when (ex.Code == RefusalCodes.AuditUnavailable)
        {
            return new ApprovalOpening(null, AuditUnavailable: true);
        }
    }

    public async Task<ApprovalView?> GetAsync()
    {
        if (state.State.Request is null) return null;
        await ExpireIfDueAsync();
        return View();
    }

    public async Task<(ApprovalView View, string Token)> ApproveAsync(string approverId, string? reason = null)
    {
        var request = state.State.Request ?? throw new KeyNotFoundException("No such approval.");
        await ExpireIfDueAsync();
        if (state.State.Status != ApprovalStatus.Pending)
        {
            throw new InvalidOperationException($"Approval {request.Id} is {state.State.Status.ToString().ToLowerInvariant()}, not pending.");
        }

        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = time.GetUtcNow();
        state.State.Status = ApprovalStatus.Approved;
        state.State.DecidedBy = approverId;
        state.State.DecidedAt = now;
        state.State.TokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
        state.State.TokenExpiresAt = now + request.TokenLifetime;
        state.State.Reason = reason;

        // Approving lets an action run: on record first (fail closed), like every permissive operator action.
        // A token must never be redeemable from memory alone: if either write fails, the approval is pending again.
        try
        {
            await AuditAsync("approval/approved", "allowed", "success", approverId,
                $"approved by {approverId}{(reason is null ? "" : ": " + reason)}; token valid until {state.State.TokenExpiresAt:O}");
            await WriteAsync("The approval");
        }
        catch
        {
            (state.State.Status, state.State.DecidedBy, state.State.DecidedAt, state.State.TokenHash, state.State.TokenExpiresAt, state.State.Reason) =
                (ApprovalStatus.Pending, null, null, null, null, null);
            throw;
        }

        return (View(), $"cpc_{request.Id}_{secret}");
    }

    public async Task<ApprovalView> DenyAsync(string approverId, string reason)
    {
        var request = state.State.Request ?? throw new KeyNotFoundException("No such approval.");
        await ExpireIfDueAsync();
        if (state.State.Status != ApprovalStatus.Pending)
        {
            throw new InvalidOperationException($"Approval {request.Id} is {state.State.Status.ToString().ToLowerInvariant()}, not pending.");
        }

        state.State.Status = ApprovalStatus.Denied;
        state.State.DecidedBy = approverId;
        state.State.DecidedAt = time.GetUtcNow();
        state.State.Reason = reason;
        state.State.Request = Closed(request);
        try
        {
            await WriteAsync("The denial");
        }
        catch
        {
            (state.State.Status, state.State.DecidedBy, state.State.DecidedAt, state.State.Reason, state.State.Request) = (ApprovalStatus.Pending, null, null, null, request);
            throw;
        }

        // Denying is protective: it stands even while the audit store is down, and its record is retried off the grain.
        try
        {
            await AuditAsync("approval/denied", "refused", "refused", approverId, $"denied by {approverId}: {reason}");
        }
        catch (StoreUnavailableException ex) when (ex.Code == RefusalCodes.AuditUnavailable)
        {
            var owed = Entry("approval/denied", "refused", "refused", approverId, $"denied by {approverId}: {reason}");
            _ = Task.Run(() => audit.AppendWhenPossible(owed));
        }

        return View();
    }

    public async Task<RedeemResult> RedeemAsync(string secret, RedeemContext call)
    {
        var reserved = await ReserveAsync(secret, call);
        if (reserved.Outcome != RedeemOutcome.Accepted) return reserved;
        await ConsumeAsync(reserved.Reservation!);
        return reserved with { Reservation = null };
    }

    public async Task<RedeemResult> ReserveAsync(string secret, RedeemContext call)
    {
        if (await CheckAsync(secret, call) is { } refused) return refused;
        _reservation = Guid.NewGuid().ToString("N");
        _reservedUntil = time.GetUtcNow() + ReservationLifetime;
        return new(RedeemOutcome.Accepted, "Approved by " + state.State.DecidedBy, _reservation);
    }

    public async Task<bool> ConsumeAsync(string reservation)
    {
        if (_reservation is null || !string.Equals(_reservation, reservation, StringComparison.Ordinal) || state.State.Status != ApprovalStatus.Approved)
        {
            return false;
        }

        _reservation = null;
        _consumedBy = reservation;
        state.State.Status = ApprovalStatus.Consumed;
        state.State.ConsumedAt = time.GetUtcNow();
        state.State.Request = Closed(state.State.Request!);
        // A failed write deactivates the grain: its next activation reads the token as still approved, and unused.
        await state.WriteOrRetireAsync(this);

        // No record of its own: the call's intent record, made durable before the action runs, names this approval
        // (confirmationId) with the session and agent that used it. A second durable write here would sit on every
        // confirmed action's critical path and say the same thing.
        return true;
    }

    public async Task<bool> RestoreAsync(string reservation)
    {
        if (_consumedBy is null || !string.Equals(_consumedBy, reservation, StringComparison.Ordinal) || state.State.Status != ApprovalStatus.Consumed)
        {
            return false;
        }

        state.State.Status = ApprovalStatus.Approved;
        state.State.ConsumedAt = null;
        try
        {
            await WriteAsync("The restored confirmation");
        }
        catch
        {
            // Not restored: the token stays used (the safe side), and the human approves again.
            state.State.Status = ApprovalStatus.Consumed;
            return false;
        }

        _consumedBy = null;
        return true;
    }

    public Task ReleaseAsync(string reservation)
    {
        if (string.Equals(_reservation, reservation, StringComparison.Ordinal)) _reservation = null;
        return Task.CompletedTask;
    }

    /// <summary>Null when the token is valid for this call and free; otherwise why not.</summary>
    private async Task<RedeemResult?> CheckAsync(string secret, RedeemContext call)
    {
        if (state.State.Request is not { } request) return new(RedeemOutcome.Unknown, "No approval matches this confirmation token.");
        await ExpireIfDueAsync();

        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
        if (state.State.TokenHash is not { } stored || !CryptographicOperations.FixedTimeEquals(presented, stored))
        {
            return new(RedeemOutcome.Unknown, "The confirmation token is not valid.");
        }

        switch (state.State.Status)
        {
            case ApprovalStatus.Consumed:
                return new(RedeemOutcome.AlreadyUsed, "This confirmation token was already used; each approval allows one call.");
            case ApprovalStatus.Expired:
                return new(RedeemOutcome.Expired, "This confirmation token expired before it was used.");
            case not ApprovalStatus.Approved:
                return new(RedeemOutcome.NotApproved, "This approval was not granted.");
        }

        if (call.TenantId != request.TenantId || call.AgentId != request.AgentId)
        {
            return new(RedeemOutcome.Mismatch, "This confirmation token was issued to another tenant or agent.");
        }

        if (call.ServerId != request.ServerId || call.ToolName != request.ToolName)
        {
            return new(RedeemOutcome.Mismatch, $"This confirmation token approves {request.ServerId}/{request.ToolName}, not this tool.");
        }

        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(call.ArgumentsHash), Encoding.ASCII.GetBytes(request.ArgumentsHash)))
        {
            return new(RedeemOutcome.Mismatch, "The arguments differ from the ones the human approved.");
        }

        if (_reservation is not null && time.GetUtcNow() < _reservedUntil)
        {
            return new(RedeemOutcome.AlreadyUsed, "This confirmation token is being used by another call; each approval allows one call.");
        }

        return null;
    }

    private async Task ExpireIfDueAsync()
    {
        var now = time.GetUtcNow();
        var due = state.State.Status switch
        {
            ApprovalStatus.Pending => now >= state.State.Request!.ExpiresAt,
            ApprovalStatus.Approved => now >= state.State.TokenExpiresAt,
            _ => false,
        };
        if (!due) return;

        var wasPending = state.State.Status == ApprovalStatus.Pending;
        state.State.Status = ApprovalStatus.Expired;
        state.State.Request = Closed(state.State.Request!);
        await state.WriteOrRetireAsync(this);
        await AuditAsync("approval/expired", "refused", "refused", null, wasPending ? "expired before anyone decided" : "approved, but the token expired unused");
    }

    /// <summary>A closed approval keeps no exact arguments: nobody needs to judge it any more.</summary>
    private static ApprovalRequest Closed(ApprovalRequest request) =>
        request.SealedArguments is null ? request : request with { SealedArguments = null };

    private ApprovalView View() => new(
        state.State.Request!, state.State.Status, state.State.DecidedBy, state.State.DecidedAt, state.State.Reason,
        state.State.TokenExpiresAt, state.State.ConsumedAt);

    /// <summary>Appends a record; the audit store's failure becomes a typed exception that crosses silos.</summary>
    private async Task AuditAsync(string kind, string decision, string outcome, string? actor, string? detail)
    {
        try
        {
            await audit.AppendAsync(Entry(kind, decision, outcome, actor, detail));
        }
        catch (AuditUnavailableException ex)
        {
            throw new StoreUnavailableException(RefusalCodes.AuditUnavailable, "The audit trail could not record this; nothing was changed. Retry shortly.", 5, ex);
        }
    }

    /// <summary>Writes the state; the grain store's failure becomes a typed exception that crosses silos.</summary>
    private async Task WriteAsync(string what)
    {
        try
        {
            await state.WriteOrRetireAsync(this);
        }
        catch (Exception ex) when (ex is not StoreUnavailableException)
        {
            throw StoreUnavailableException.GrainStore(what, ex);
        }
    }

    private AuditEntry Entry(string kind, string decision, string outcome, string? actor, string? detail)
    {
        var request = state.State.Request!;
        return new AuditEntry
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Timestamp = time.GetUtcNow(),
            TenantId = request.TenantId,
            AgentId = request.AgentId,
            UserId = request.UserId,
            SessionId = request.SessionId,
            TokenId = request.TokenId,
            Kind = kind,
            Server = request.ServerId,
            Tool = request.ToolName,
            Arguments = request.Arguments,
            ArgumentsHash = request.ArgumentsHash,
            Decision = decision,
            Outcome = outcome,
            ConfirmationId = request.Id,
            Detail = actor is null ? detail : $"{detail ?? kind} (by {actor})",
        };
    }
}

[GenerateSerializer, Alias("cp.ApprovalRecord")]
public sealed class ApprovalRecord
{
    [Id(0)] public ApprovalRequest? Request { get; set; }
    [Id(1)] public ApprovalStatus Status { get; set; }
    [Id(2)] public string? DecidedBy { get; set; }
    [Id(3)] public DateTimeOffset? DecidedAt { get; set; }
    [Id(4)] public string? Reason { get; set; }
    [Id(5)] public byte[]? TokenHash { get; set; }
    [Id(6)] public DateTimeOffset? TokenExpiresAt { get; set; }
    [Id(7)] public DateTimeOffset? ConsumedAt { get; set; }
}
