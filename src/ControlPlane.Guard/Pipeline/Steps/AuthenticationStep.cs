using ControlPlane.Guard.Authentication;
using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>The token must still be good now, not only when the session opened.</summary>
public sealed class AuthenticationStep(AgentTokenValidator tokens) : IGuardStep
{
    public string Name => "authentication";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var refusal = tokens.StatusOf(call.Token) switch
        {
            TokenStatus.Valid => null,
            TokenStatus.Expired => new Refusal(RefusalCodes.Unauthenticated,
                "The agent token expired. Ask the operator for a new token and reconnect with it."),
            _ => new Refusal(RefusalCodes.Unauthenticated,
                "The agent token was revoked. Stop using it; ask the operator for a new token."),
        };
        return ValueTask.FromResult(refusal);
    }
}
