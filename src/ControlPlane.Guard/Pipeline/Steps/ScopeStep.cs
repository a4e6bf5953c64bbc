using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>The token's scopes must cover what the request reaches, judged by its effective classification.</summary>
public sealed class ScopeStep : IGuardStep
{
    public string Name => "scope";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var target = call.Target;
        var isAction = call.IsAction;
        if (call.Grant.Allows(target.ServerId, target.Name, isAction)) return ValueTask.FromResult<Refusal?>(null);

        var needed = isAction ? $"server:{target.ServerId}:write" : $"server:{target.ServerId}:read";
        var either = call.Tool is null ? "" : $" or 'tool:{target.ServerId}/{target.Name}'";
        return ValueTask.FromResult<Refusal?>(new Refusal(
            RefusalCodes.ForbiddenScope,
            $"This token may not {(call.Tool is null ? "read" : "call")} '{target.PublicName}'. It needs the scope '{needed}'{either}; " +
            "ask the operator who issued the token, and do not retry with other tools to get around it."));
    }
}
