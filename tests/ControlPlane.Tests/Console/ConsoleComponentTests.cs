using Bunit;
using ControlPlane.Host.OperatorConsole;
using ControlPlane.Host.OperatorConsole.Components.Pages;
using ControlPlane.Host.OperatorConsole.Components.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor;
using MudBlazor.Services;

namespace ControlPlane.Tests.Console;

/// <summary>bUnit tests of the console's components, rendered without a host or browser.</summary>
public sealed class ConsoleComponentTests : IAsyncLifetime
{
    // MudBlazor registers services that only dispose asynchronously, so the context is disposed that way.
    private readonly BunitContext _bunit = new();

    public ConsoleComponentTests()
    {
        _bunit.Services.AddMudServices();
        _bunit.Services.AddSingleton<IOptions<ConsoleOptions>>(Options.Create(new ConsoleOptions()));
        _bunit.JSInterop.Mode = JSRuntimeMode.Loose;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _bunit.DisposeAsync();

    [Fact]
    public async Task A_global_kill_stays_disabled_until_a_reason_and_the_exact_phrase_are_typed()
    {
        var provider = _bunit.Render<MudDialogProvider>();
        var dialogs = _bunit.Services.GetRequiredService<IDialogService>();
        Task<string?> answer = null!;
        await provider.InvokeAsync(() => { answer = dialogs.AskAsync("Stop every tool call", "refuses everything", "Stop everything", danger: true, phrase: "STOP ALL TOOL CALLS"); });

        var confirm = () => provider.Find("[data-test=confirm]");
        Assert.True(confirm().HasAttribute("disabled"));

        provider.Find("textarea").Input("incident 12: agents are deleting tickets");
        Assert.True(confirm().HasAttribute("disabled"));

        var phrase = provider.FindAll("input").Last();
        phrase.Input("stop all tool calls");
        Assert.True(confirm().HasAttribute("disabled"));

        provider.FindAll("input").Last().Input("STOP ALL TOOL CALLS");
        provider.WaitForAssertion(() => Assert.False(confirm().HasAttribute("disabled")));
        confirm().Click();
        Assert.Equal("incident 12: agents are deleting tickets", await answer);
    }

    [Fact]
    public async Task Cancelling_the_reason_dialog_changes_nothing()
    {
        var provider = _bunit.Render<MudDialogProvider>();
        var dialogs = _bunit.Services.GetRequiredService<IDialogService>();
        Task<string?> answer = null!;
        await provider.InvokeAsync(() => { answer = dialogs.AskAsync("Clear kill switch", null, "Clear"); });

        provider.Find("textarea").Input("typed but then thought better of it");
        provider.Find("[data-test=cancel]").Click();
        Assert.Null(await answer);
    }

    [Fact]
    public void The_sign_in_page_explains_throttling_and_never_redirects_off_the_console()
    {
        var navigation = _bunit.Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>();
        navigation.NavigateTo("/console/signin?error=throttled&retryAfter=42&returnUrl=https%3A%2F%2Fevil.example%2F");
        var page = _bunit.Render<SignIn>();

        Assert.Contains("Try again in 42 seconds", page.Find("[data-test=signin-error]").TextContent);
        Assert.Equal("/console", page.Find("input[name=returnUrl]").GetAttribute("value"));
        Assert.NotNull(page.Find("input[name=password][type=password]"));
    }
}
