namespace ControlPlane.Grains;

internal static class PersistentStateExtensions
{
    /// <summary>
    /// Writes the state; if the write fails, the activation is retired so that the next call reloads
    /// from storage. Memory must never keep a change that storage did not accept.
    /// </summary>
    public static async Task WriteOrRetireAsync<T>(this IPersistentState<T> state, Grain grain)
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            grain.DeactivateOnIdle();
            throw;
        }
    }
}
