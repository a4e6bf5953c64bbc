using ControlPlane.Refusals;

namespace ControlPlane.Guard.Pipeline.Steps;

/// <summary>Read-only first: an action tool runs only on a server an operator made read-write for this tenant.</summary>
public sealed class ModeStep : IGuardStep
{
    public string Name => "mode";

    public ValueTask<Refusal?> CheckAsync(GuardCall call, CancellationToken cancellationToken)
    {
        var tool = call.Target;
        if (!call.IsAction || call.State.Policy.IsReadWrite(call.Identity.TenantId, tool.ServerId))
        {
            return ValueTask.FromResult<Refusal?>(null);
        }

        return ValueTask.FromResult<Refusal?>(new Refusal(
            RefusalCodes.ReadOnly,
            $"'{tool.PublicName}' changes things, and server '{tool.ServerId}' is read-only for this tenant. " +
            "Only an operator can enable its actions; tell the user what you wanted to do instead of retrying."));
    }
}
