using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;
using ControlPlane.Operators;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.OperatorConsole.Security;

/// <summary>
/// Console accounts: those the deployment configures, then the operator directory (where the embedded
/// default seeds <c>admin</c>). Looked up afresh for every action, so a changed role or removed account
/// takes effect at once, not at the next sign-in.
/// </summary>
internal sealed class ConsoleAccounts(IOptions<ConsoleOptions> options, OperatorService operators)
{
    // Verified when the account does not exist, so a wrong user name costs as long as a wrong password.
    private static readonly string DecoyHash = PasswordHasher.Hash(Guid.NewGuid().ToString("N"));

    public async Task<OperatorAccount?> FindAsync(string? operatorId)
    {
        if (string.IsNullOrEmpty(operatorId)) return null;
        var configured = options.Value.Operators.FirstOrDefault(o => string.Equals(o.Id, operatorId, StringComparison.Ordinal));
        if (configured is not null)
        {
            return new OperatorAccount(configured.Id, [.. configured.Roles], [.. configured.Tenants], [], DateTimeOffset.UnixEpoch, configured.PasswordHash);
        }

        return await operators.FindAsync(operatorId);
    }

    /// <summary>The account if the password is right; null otherwise (without saying which part was wrong).</summary>
    public async Task<OperatorAccount?> VerifyPasswordAsync(string? operatorId, string? password)
    {
        var account = await FindAsync(operatorId);
        var hash = account?.PasswordHash ?? DecoyHash;
        var ok = PasswordHasher.Verify(password ?? "", hash);
        return ok && account?.PasswordHash is not null ? account : null;
    }
}
