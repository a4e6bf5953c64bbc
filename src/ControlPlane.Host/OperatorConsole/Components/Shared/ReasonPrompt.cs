using MudBlazor;

namespace ControlPlane.Host.OperatorConsole.Components.Shared;

internal static class ReasonPrompt
{
    /// <summary>Shows <see cref="ReasonDialog"/>; the typed reason, or null if the operator backed out.</summary>
    public static Task<string?> AskAsync(this IDialogService dialogs, string title, string? message, string confirmText, bool danger = false, string? phrase = null) =>
        ShowAsync(dialogs, title, message, confirmText, danger, phrase, asksReason: true);

    /// <summary>The dialog with an optional reason: "" when confirmed without one, null if the operator backed out.</summary>
    public static Task<string?> AskOptionalReasonAsync(this IDialogService dialogs, string title, string? message, string confirmText) =>
        ShowAsync(dialogs, title, message, confirmText, danger: false, phrase: null, asksReason: true, reasonOptional: true);

    /// <summary>The same dialog without the reason field, for actions that audit themselves: true once confirmed (and the phrase typed).</summary>
    public static async Task<bool> ConfirmAsync(this IDialogService dialogs, string title, string? message, string confirmText, bool danger = false, string? phrase = null) =>
        await ShowAsync(dialogs, title, message, confirmText, danger, phrase, asksReason: false) is not null;

    private static async Task<string?> ShowAsync(IDialogService dialogs, string title, string? message, string confirmText, bool danger, string? phrase, bool asksReason, bool reasonOptional = false)
    {
        var parameters = new DialogParameters<ReasonDialog>
        {
            { d => d.Title, title },
            { d => d.Message, message },
            { d => d.ConfirmText, confirmText },
            { d => d.Danger, danger },
            { d => d.ConfirmationPhrase, phrase },
            { d => d.AsksReason, asksReason },
            { d => d.ReasonOptional, reasonOptional },
        };
        var dialog = await dialogs.ShowAsync<ReasonDialog>(title, parameters, new DialogOptions { MaxWidth = MaxWidth.Small, FullWidth = true, CloseOnEscapeKey = true });
        var result = await dialog.Result;
        return result is { Canceled: false, Data: string reason } ? reason : null;
    }
}
