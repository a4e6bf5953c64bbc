using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;

namespace ControlPlane.Guard.Approvals;

/// <summary>
/// The exact arguments of an action waiting for approval, sealed for the approvers of its tenant. The audit, logs,
/// webhooks and the agent-facing <c>proposed_action</c> see the redacted form; an approver must see what the token
/// will be bound to, or two requests for different people look the same. Sealed with the cluster's Data Protection
/// key ring (shared by every silo, encrypted at rest where the deployment protects the ring), under a purpose bound to
/// the approval's id, so a sealed value moved onto another approval does not open.
/// </summary>
public sealed class ApprovalArgumentSeal(IDataProtectionProvider provider)
{
    private readonly IDataProtector _protector = provider.CreateProtector("ControlPlane.Approvals.ExactArguments.v1");

    public string Seal(string approvalId, string canonicalArguments) =>
        _protector.CreateProtector(approvalId).Protect(canonicalArguments);

    /// <summary>The exact arguments, or null when the value does not open (another key ring, another approval, tampered).</summary>
    public string? Unseal(string approvalId, string sealedArguments)
    {
        try
        {
            return _protector.CreateProtector(approvalId).Unprotect(sealedArguments);
        }
        catch (CryptographicException)
        {
            return null;
        }
    }
}
