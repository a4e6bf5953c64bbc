using MudBlazor;

namespace ControlPlane.Host.OperatorConsole.Components.Shared;

internal static class ReasonPrompt
{
    /// <summary>Shows <see cref="ReasonDialog"/>; the typed reason, or null if the operator backed out.</summary>
    public static async Task<string?> AskAsync(this IDialogService dialogs, string title, string? message, string confirmText, bool danger = false, string? phrase = null)
    {
        var parameters = new DialogParameters<ReasonDialog>
        {
            { d => d.Title, title },
            { d => d.Message, message },
            { d => d.ConfirmText, confirmText },
            { d => d.Danger, danger },
            { d => d.ConfirmationPhrase, phrase },
        };
        var dialog = await dialogs.ShowAsync<ReasonDialog>(title, parameters, new DialogOptions { MaxWidth = MaxWidth.Small, FullWidth = true, CloseOnEscapeKey = true });
        var result = await dialog.Result;
        return result is { Canceled: false, Data: string reason } ? reason : null;
    }
}
