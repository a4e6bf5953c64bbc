using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>Step 3: the token's scopes must cover this tool, judged by its effective classification.</summary>
public sealed class ScopeStep : IGuardStep
{
    public string Name => "scope";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var tool = call.Tool;
        var isAction = call.IsAction;
        if (call.Grant.Allows(tool.ServerId, tool.ToolName, isAction)) return ValueTask.FromResult<Refusal?>(null);

        var needed = isAction ? $"server:{tool.ServerId}:write" : $"server:{tool.ServerId}:read";
        return ValueTask.FromResult<Refusal?>(new Refusal(
            RefusalCodes.ForbiddenScope,
            $"This token may not call '{tool.PublicName}'. It needs the scope '{needed}' or 'tool:{tool.ServerId}/{tool.ToolName}'; " +
            "ask the operator who issued the token, and do not retry with other tools to get around it."));
    }
}
