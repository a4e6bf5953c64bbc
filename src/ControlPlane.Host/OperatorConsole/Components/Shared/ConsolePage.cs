using ControlPlane.Host.Operations;
using ControlPlane.Host.OperatorConsole.Security;
using ControlPlane.Operators;
using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace ControlPlane.Host.OperatorConsole.Components.Shared;

/// <summary>
/// What every console page shares: the signed-in operator, and one way to run an action through the
/// service layer and tell the person what happened (the service layer's refusals become readable messages).
/// </summary>
public abstract class ConsolePage : ComponentBase, IDisposable
{
    private readonly CancellationTokenSource _disposed = new();

    [Inject]
    internal CurrentOperator CurrentOperator { get; set; } = default!;

    [Inject]
    protected ISnackbar Snackbar { get; set; } = default!;

    [Inject]
    protected IDialogService Dialogs { get; set; } = default!;

    [Inject]
    protected TimeProvider Time { get; set; } = default!;

    /// <summary>The account as of the last load: for showing or hiding controls only. Actions re-check on the server.</summary>
    internal OperatorAccount? Account { get; private set; }

    /// <summary>Why the page could not load (e.g. a missing role), shown instead of its content.</summary>
    protected string? LoadError { get; private set; }

    protected CancellationToken Disposed => _disposed.Token;

    internal bool Can(string role) => Account?.HasRole(role) == true;

    protected override async Task OnInitializedAsync()
    {
        try
        {
            Account = await CurrentOperator.GetAsync();
            await LoadAsync(Account);
            LoadError = null;
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            LoadError = message;
        }
    }

    /// <summary>Loads the page's data; refusals from the service layer become <see cref="LoadError"/>.</summary>
    internal abstract Task LoadAsync(OperatorAccount by);

    protected async Task ReloadAsync()
    {
        try
        {
            Account = await CurrentOperator.GetAsync();
            await LoadAsync(Account);
            LoadError = null;
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            LoadError = message;
        }

        await InvokeAsync(StateHasChanged);
    }

    /// <summary>Runs an action as the current operator (looked up afresh); reports success or the refusal.</summary>
    internal async Task<bool> RunAsync(Func<OperatorAccount, Task> action, string? done = null)
    {
        try
        {
            var by = await CurrentOperator.GetAsync();
            await action(by);
            if (done is not null) Snackbar.Add(done, Severity.Success);
            return true;
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            Snackbar.Add(message, Severity.Error);
            return false;
        }
    }

    internal static string? Describe(Exception ex) => ex switch
    {
        ForbiddenException forbidden => "Not allowed: " + forbidden.Message,
        InvalidRequestException invalid => string.Join(" ", invalid.Errors.SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}"))),
        NotFoundException notFound => notFound.Message,
        ConflictException conflict => conflict.Message,
        ControlPlane.GuardState.GuardStateLimitException limit => limit.Full ? limit.Message : $"{limit.Field}: {limit.Message}",
        _ when OperatorAuditor.IsAuditFailure(ex) => "The audit trail could not record this, so it was not done. Retry shortly; kill switches, revocations and read-only still work.",
        _ => null,
    };

    internal string Age(DateTimeOffset at) => Ago(Time.GetUtcNow(), at);

    /// <summary>How long before <paramref name="now"/> something happened, in the coarsest unit that still reads well.</summary>
    internal static string Ago(DateTimeOffset now, DateTimeOffset at)
    {
        var age = now - at;
        if (age < TimeSpan.Zero) age = TimeSpan.Zero;
        return age.TotalSeconds < 90 ? $"{(int)age.TotalSeconds}s ago"
            : age.TotalMinutes < 90 ? $"{(int)age.TotalMinutes}m ago"
            : age.TotalHours < 48 ? $"{(int)age.TotalHours}h ago"
            : $"{(int)age.TotalDays}d ago";
    }

    public void Dispose()
    {
        _disposed.Cancel();
        _disposed.Dispose();
        OnDisposed();
        GC.SuppressFinalize(this);
    }

    protected virtual void OnDisposed()
    {
    }
}
