using ControlPlane.Host.Operations;
using ControlPlane.Operators;
using Microsoft.AspNetCore.Components.Authorization;

namespace ControlPlane.Host.OperatorConsole.Security;

/// <summary>
/// The signed-in operator of one console circuit. Every action asks for the account afresh and hands it to
/// the service layer, which checks role and tenant on the server whatever the page showed.
/// </summary>
internal sealed class CurrentOperator(AuthenticationStateProvider authentication, ConsoleAccounts accounts)
{
    public async Task<OperatorAccount> GetAsync()
    {
        var state = await authentication.GetAuthenticationStateAsync();
        return await accounts.FindAsync(state.User.OperatorId())
            ?? throw new ForbiddenException("Your operator account no longer exists; sign in again.");
    }
}

/// <summary>The operator behind a console cookie on a plain HTTP request (downloads), looked up afresh.</summary>
internal sealed class CurrentOperatorFromCookie(ConsoleAccounts accounts)
{
    public async Task<OperatorAccount> GetAsync(System.Security.Claims.ClaimsPrincipal user) =>
        await accounts.FindAsync(user.OperatorId()) ?? throw new ForbiddenException("Your operator account no longer exists; sign in again.");
}
