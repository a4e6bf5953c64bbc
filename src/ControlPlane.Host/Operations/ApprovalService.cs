using ControlPlane.Approvals;
using ControlPlane.Guard.Approvals;
using ControlPlane.Operators;

namespace ControlPlane.Host.Operations;

/// <summary>An approval as one operator may see it: the exact arguments for an approver of its tenant, else the redacted ones.</summary>
internal sealed record ApprovalEntry(ApprovalView View, string Arguments, bool Exact);

/// <summary>The approval queue for human approvers. Agents' credentials never get here: the API takes operator keys only.</summary>
internal sealed class ApprovalService(IGrainFactory grains, TenantService tenants, ApprovalArgumentSeal seal, OperatorAuditor auditor)
{
    public async Task<IReadOnlyList<ApprovalView>> ListAsync(OperatorAccount by, string? status, string? tenantId)
    {
        by.RequireRole(OperatorRoles.Viewer);
        ApprovalStatus? wanted = status switch
        {
            null or "" => null,
            _ when Enum.TryParse<ApprovalStatus>(status, ignoreCase: true, out var s) => s,
            _ => throw InvalidRequestException.For("status", "Use pending, approved, denied, expired or consumed."),
        };

        IEnumerable<string> tenantIds = tenantId is not null
            ? [(await tenants.GetVisibleAsync(by, tenantId)).Id]
            : (await tenants.ListAsync(by)).Select(t => t.Id);

        var views = new List<ApprovalView>();
        foreach (var tenant in tenantIds)
        {
            var index = grains.GetGrain<IApprovalIndexGrain>(tenant);
            foreach (var id in await index.ListAsync())
            {
                var view = await grains.GetGrain<IApprovalGrain>(id).GetAsync();
                if (view is null || view.Status != ApprovalStatus.Pending) await index.RemoveAsync(id);
                if (view is not null && (wanted is null || view.Status == wanted)) views.Add(view);
            }
        }

        return [.. views.OrderBy(v => v.Request.RequestedAt)];
    }

    /// <summary>
    /// What <paramref name="by"/> sees of an approval. An approver of its tenant sees the exact arguments the token
    /// will be bound to (a human must judge the real action), and that reveal is audited first, with who and when;
    /// everyone else, and everyone once the approval is closed or while the audit cannot record the reveal, sees the
    /// redacted arguments that the audit and the agent see.
    /// </summary>
    public async Task<ApprovalEntry> ShowAsync(OperatorAccount by, ApprovalView view)
    {
        var request = view.Request;
        var redacted = new ApprovalEntry(view, request.Arguments, Exact: false);
        if (request.SealedArguments is not { } sealedArguments || !by.HasRole(OperatorRoles.Approver) || !by.CanSeeTenant(request.TenantId))
        {
            return redacted;
        }

        var action = new OperatorAction("approval.reveal", request.TenantId, OperatorAction.Targets(("approval", request.Id)), null)
        {
            Server = request.ServerId,
            Tool = request.ToolName,
            AgentId = request.AgentId,
        };
        try
        {
            var exact = await auditor.PermissiveAsync(by, action, () => Task.FromResult(seal.Unseal(request.Id, sealedArguments)));
            return exact is null ? redacted : new ApprovalEntry(view, exact, Exact: true);
        }
        catch (Exception ex) when (OperatorAuditor.IsAuditFailure(ex))
        {
            return redacted;
        }
    }

    public async Task<(ApprovalView View, string Token)> ApproveAsync(OperatorAccount by, string approvalId, string? reason = null)
    {
        reason = string.IsNullOrWhiteSpace(reason) ? null : reason.Trim();
        new RequestValidator().Check(reason is null || reason.Length <= 500, "reason", "Keep the reason under 500 characters.").ThrowIfInvalid();
        var grain = await VisibleAsync(by, approvalId);
        var view = (await grain.GetAsync())!;
        if (view.Request.UserId is { } subject && string.Equals(subject, by.Id, StringComparison.Ordinal))
        {
            throw new ForbiddenException("You are the user this action would act for; another approver must decide it.");
        }

        try
        {
            var approved = await grain.ApproveAsync(by.Id, reason);
            await grains.GetGrain<IApprovalIndexGrain>(view.Request.TenantId).RemoveAsync(approvalId);
            return approved;
        }
        catch (InvalidOperationException ex)
        {
            throw new ConflictException(ex.Message);
        }
    }

    public async Task<ApprovalView> DenyAsync(OperatorAccount by, string approvalId, string? reason)
    {
        new RequestValidator().Check(!string.IsNullOrWhiteSpace(reason), "reason", "Say why, so the agent can tell the user.").ThrowIfInvalid();
        var grain = await VisibleAsync(by, approvalId);
        try
        {
            var denied = await grain.DenyAsync(by.Id, reason!.Trim());
            await grains.GetGrain<IApprovalIndexGrain>(denied.Request.TenantId).RemoveAsync(approvalId);
            return denied;
        }
        catch (InvalidOperationException ex)
        {
            throw new ConflictException(ex.Message);
        }
    }

    private async Task<IApprovalGrain> VisibleAsync(OperatorAccount by, string approvalId)
    {
        by.RequireRole(OperatorRoles.Approver);
        if (!Identifiers.IsValidReference(approvalId)) throw new NotFoundException($"No approval '{approvalId}'.");
        var grain = grains.GetGrain<IApprovalGrain>(approvalId);
        var view = await grain.GetAsync() ?? throw new NotFoundException($"No approval '{approvalId}'.");

        // Another tenant's approval does not exist, as far as this operator can tell.
        if (!by.CanSeeTenant(view.Request.TenantId)) throw new NotFoundException($"No approval '{approvalId}'.");
        return grain;
    }
}
