using MudBlazor;

namespace ControlPlane.Host.OperatorConsole.Components.Shared;

internal static class ReasonPrompt
{
    /// <summary>Shows <see cref="ReasonDialog"/>; the typed reason, or null if the operator backed out.</summary>
    public static Task<string?> AskAsync(this IDialogService dialogs, string title, string? message, string confirmText, bool danger = false, string? phrase = null) =>
        ShowAsync(dialogs, title, message, confirmText, danger, phrase, asksReason: true);

    /// <summary>The same dialog without the reason field, for actions that audit themselves: true once confirmed (and the phrase typed).</summary>
    public static async Task<bool> ConfirmAsync(this IDialogService dialogs, string title, string? message, string confirmText, bool danger = false, string? phrase = null) =>
        await ShowAsync(dialogs, title, message, confirmText, danger, phrase, asksReason: false) is not null;

    private static async Task<string?> ShowAsync(IDialogService dialogs, string title, string? message, string confirmText, bool danger, string? phrase, bool asksReason)
    {
        var parameters = new DialogParameters<ReasonDialog>
        {
            { d => d.Title, title },
            { d => d.Message, message },
            { d => d.ConfirmText, confirmText },
            { d => d.Danger, danger },
            { d => d.ConfirmationPhrase, phrase },
            { d => d.AsksReason, asksReason },
        };
        var dialog = await dialogs.ShowAsync<ReasonDialog>(title, parameters, new DialogOptions { MaxWidth = MaxWidth.Small, FullWidth = true, CloseOnEscapeKey = true });
        var result = await dialog.Result;
        return result is { Canceled: false, Data: string reason } ? reason : null;
    }
}
