using Bunit;
using ControlPlane.Drills;
using ControlPlane.Host.Operations;
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

    [Fact]
    public async Task Drill_levels_show_outcome_staleness_and_steps_and_a_run_button_only_where_the_operator_may_run()
    {
        var now = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
        var fresh = Result(DrillLevel.Session, passed: true, finishedAt: now.AddMinutes(-5), "set session switch", "call refused KILLED", "cleared", "call succeeded");
        var oldPass = Result(DrillLevel.Tenant, passed: true, finishedAt: now.AddDays(-120), "set tenant switch");
        var failed = Result(DrillLevel.Tenant, passed: false, finishedAt: now.AddHours(-2), "set tenant switch", "call went through") with { Failure = "the call was not refused" };
        IReadOnlyList<DrillStatus> statuses =
        [
            new(DrillLevel.Session, fresh, fresh, TimeSpan.FromMinutes(5), Stale: false, Scheduled: true),
            new(DrillLevel.Tenant, failed, oldPass, TimeSpan.FromDays(120), Stale: true, Scheduled: true),
            new(DrillLevel.Global, null, null, null, Stale: true, Scheduled: false),
        ];
        var ran = new List<DrillLevel>();
        var list = _bunit.Render<DrillStatusList>(p => p
            .Add(c => c.Statuses, statuses)
            .Add(c => c.CanRun, level => level != DrillLevel.Global)
            .Add(c => c.OnRun, level => ran.Add(level))
            .Add(c => c.Now, now));

        Assert.Contains("2 of 3 levels", list.Find("[data-test=stale-warning]").TextContent);

        var session = list.Find("[data-test=drill][data-level=session]");
        Assert.Equal("passed", session.QuerySelector("[data-test=outcome]")!.TextContent.Trim());
        Assert.Null(session.QuerySelector("[data-test=stale]"));
        Assert.NotNull(session.QuerySelector("[data-test=scheduled]"));
        Assert.Contains("5m ago", session.QuerySelector("[data-test=last-run]")!.TextContent);
        Assert.Contains("1500 ms", session.QuerySelector("[data-test=duration]")!.TextContent);
        Assert.Contains("ops-lead", session.QuerySelector("[data-test=ran-by]")!.TextContent);

        var tenant = list.Find("[data-test=drill][data-level=tenant]");
        Assert.Equal("failed", tenant.QuerySelector("[data-test=outcome]")!.TextContent.Trim());
        Assert.NotNull(tenant.QuerySelector("[data-test=stale]"));
        Assert.Contains("120d ago", tenant.QuerySelector("[data-test=last-passed]")!.TextContent);
        Assert.Contains("the call was not refused", tenant.QuerySelector("[data-test=failure]")!.TextContent);

        var global = list.Find("[data-test=drill][data-level=global]");
        Assert.Equal("never run", global.QuerySelector("[data-test=outcome]")!.TextContent.Trim());
        Assert.NotNull(global.QuerySelector("[data-test=stale]"));
        Assert.NotNull(global.QuerySelector("[data-test=manual]"));
        Assert.True(global.QuerySelector("[data-test=run]")!.HasAttribute("disabled"));

        // Steps are folded away until asked for.
        Assert.Empty(list.FindAll("[data-test=drill][data-level=session] [data-test=steps]"));
        await list.Find("[data-test=drill][data-level=session] [data-test=toggle-steps]").ClickAsync(new());
        var steps = list.FindAll("[data-test=drill][data-level=session] [data-test=steps] li");
        Assert.Equal(["set session switch", "call refused KILLED", "cleared", "call succeeded"], steps.Select(s => s.TextContent.Trim()));

        await list.Find("[data-test=drill][data-level=session] [data-test=run]").ClickAsync(new());
        Assert.Equal([DrillLevel.Session], ran);

        // While a drill runs, every Run button waits for it.
        list.Render(p => p.Add(c => c.Running, DrillLevel.Session));
        Assert.All(list.FindAll("[data-test=run]"), b => Assert.True(b.HasAttribute("disabled")));
    }

    [Fact]
    public async Task The_confirm_only_dialog_asks_no_reason_but_still_wants_the_exact_phrase()
    {
        var provider = _bunit.Render<MudDialogProvider>();
        var dialogs = _bunit.Services.GetRequiredService<IDialogService>();
        Task<bool> answer = null!;
        await provider.InvokeAsync(() => { answer = dialogs.ConfirmAsync("Drill the global kill switch", "stops everything briefly", "Run global drill", danger: true, phrase: "DRILL THE GLOBAL SWITCH"); });

        Assert.Empty(provider.FindAll("textarea"));
        var confirm = () => provider.Find("[data-test=confirm]");
        Assert.True(confirm().HasAttribute("disabled"));
        provider.Find("input").Input("DRILL THE GLOBAL SWITCH");
        provider.WaitForAssertion(() => Assert.False(confirm().HasAttribute("disabled")));
        confirm().Click();
        Assert.True(await answer);
    }

    private static DrillResult Result(DrillLevel level, bool passed, DateTimeOffset finishedAt, params string[] steps) =>
        new(Guid.NewGuid().ToString("n"), level, passed, finishedAt.AddMilliseconds(-1500), finishedAt, "ops-lead", steps, passed ? null : "failed");
}
