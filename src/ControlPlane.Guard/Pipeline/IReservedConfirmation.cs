namespace ControlPlane.Guard.Pipeline;

/// <summary>A confirmation token held for one call: consumed (durably) if the call goes ahead, released if not.</summary>
public interface IReservedConfirmation
{
    /// <summary>True once the consumption is durable; false if the reservation was no longer held (the token is then unused).</summary>
    Task<bool> ConsumeAsync();

    Task ReleaseAsync();

    /// <summary>Undoes a durable consumption of an action that then did not run; false if it could not be undone.</summary>
    Task<bool> RestoreAsync();
}
