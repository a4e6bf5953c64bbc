using System.Security.Claims;
using ControlPlane.Operators;

namespace ControlPlane.Host.Security;

/// <summary>An authenticated operator, with the account (roles, tenants) at hand for authorization.</summary>
internal sealed class OperatorIdentity : ClaimsIdentity
{
    public OperatorIdentity(OperatorAccount account, string authenticationType)
        : base(ClaimsOf(account), authenticationType, ClaimTypes.Name, ClaimTypes.Role)
    {
        Account = account;
    }

    public OperatorAccount Account { get; }

    private static IEnumerable<Claim> ClaimsOf(OperatorAccount account)
    {
        yield return new Claim(ClaimTypes.NameIdentifier, account.Id);
        yield return new Claim(ClaimTypes.Name, account.Id);
        foreach (var role in account.Roles) yield return new Claim(ClaimTypes.Role, role);
    }
}

internal static class OperatorPrincipalExtensions
{
    public static OperatorAccount Operator(this ClaimsPrincipal principal) =>
        (principal.Identity as OperatorIdentity)?.Account
        ?? throw new InvalidOperationException("The request is not authenticated as an operator.");
}
