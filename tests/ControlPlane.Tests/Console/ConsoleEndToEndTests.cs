using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ControlPlane.Host.Operations;
using ControlPlane.Host.OperatorConsole.Security;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using ControlPlane.Tests.EndToEnd;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace ControlPlane.Tests.Console;

/// <summary>
/// The console as an on-call engineer uses it, in a real browser against the real host, with a real MCP
/// client on the other side feeling the effect of every click.
/// </summary>
[Collection(ConsoleBrowserCollection.Name)]
public sealed class ConsoleEndToEndTests(ConsoleBrowserFixture fixture, ITestOutputHelper output)
{
    private static readonly Dictionary<string, object?> Lookup = new() { ["email"] = "ada@example.com" };

    [Fact]
    public async Task An_operator_kills_a_tenant_the_agent_is_refused_then_clears_it_and_the_agent_works_again()
    {
        await using var client = await fixture.Host.ConnectAsync();
        RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));

        try
        {
            var page = await fixture.SignInAsAdminAsync();
            await fixture.ScreenshotAsync(page, "overview");
            await page.ClickAsync("a[href='/console/kill-switches']");
            await page.Locator("[data-test=search]").FillAsync("demo");
            var candidate = page.Locator("[data-test=candidate][data-target='tenant|demo']");
            await ClickUntilDialogOpensAsync(page, candidate.Locator("[data-test=kill]"));

            // A reason is required before the switch can be flipped.
            var confirm = page.Locator(".mud-dialog [data-test=confirm]");
            await Expect(confirm).ToBeDisabledAsync();
            await page.Locator(".mud-dialog textarea").First.FillAsync("incident 4711: demo tenant's agent loops on lookups");
            await confirm.ClickAsync();

            var row = page.Locator("[data-test=switches] tr", new() { HasText = "tenant demo" });
            await Expect(row).ToBeVisibleAsync();
            await Expect(row).ToContainTextAsync("incident 4711");
            await Expect(row).ToContainTextAsync("admin");

            var refusal = RefusalAssert.Refused(await client.CallToolAsync("lookup_customer_by_email", Lookup), RefusalCodes.Killed);
            Assert.Contains("incident 4711", refusal.GetProperty("reason").GetString());
            await page.Locator("[data-test=search]").FillAsync("");
            await fixture.ScreenshotAsync(page, "kill-switches");

            await ClickUntilDialogOpensAsync(page, row.Locator("[data-test=clear]"));
            await page.Locator(".mud-dialog textarea").First.FillAsync("loop fixed, agent redeployed");
            await page.Locator(".mud-dialog [data-test=confirm]").ClickAsync();
            await Expect(page.Locator("[data-test=switches] tr", new() { HasText = "tenant demo" })).ToHaveCountAsync(0);

            RefusalAssert.Succeeded(await client.CallToolAsync("lookup_customer_by_email", Lookup));
        }
        finally
        {
            // A failure midway must not leave the demo tenant killed for the fixture's other tests.
            await ClearSwitchesWithReasonAsync("incident 4711");
        }
    }

    private async Task ClearSwitchesWithReasonAsync(string reasonPrefix)
    {
        using var admin = fixture.Host.OperatorHttp();
        var active = await admin.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
        foreach (var item in active.GetProperty("items").EnumerateArray())
        {
            if ((item.GetProperty("reason").GetString() ?? "").StartsWith(reasonPrefix, StringComparison.Ordinal))
            {
                await fixture.Host.ClearAsync(item.GetProperty("id").GetString()!);
            }
        }
    }

    [Fact]
    public async Task A_switch_flipped_through_the_REST_API_appears_and_disappears_without_a_reload()
    {
        var page = await fixture.SignInAsAdminAsync();
        await page.ClickAsync("a[href='/console/kill-switches']");
        await Expect(page.Locator("[data-test=active-count]")).ToContainTextAsync("0 active");

        var watch = Stopwatch.StartNew();
        var id = await fixture.Host.KillAsync(new { scope = "agent", tenantId = "demo", agentId = "demo-agent", reason = "flipped from another terminal" });
        var row = page.Locator("[data-test=switches] tr", new() { HasText = "agent demo-agent in demo" });
        await Expect(row).ToBeVisibleAsync();
        output.WriteLine($"REST flip visible in the open console after {watch.ElapsedMilliseconds} ms");

        await fixture.Host.ClearAsync(id);
        await Expect(row).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task An_approver_approves_a_pending_refund_and_the_agents_retry_with_the_token_succeeds()
    {
        await fixture.Host.SetModeAsync("demo", "support-desk", "read-write");
        try
        {
            await using var client = await fixture.Host.ConnectAsync();
            var refund = new Dictionary<string, object?> { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 1250, ["reason"] = "duplicate" };
            var refusal = RefusalAssert.Refused(await client.CallToolAsync("create_refund", refund), RefusalCodes.RequiresConfirmation);
            var approvalId = refusal.GetProperty("approval_id").GetString()!;

            var page = await fixture.SignInAsAdminAsync();
            await page.ClickAsync("a[href='/console/approvals']");
            var card = page.Locator($"[data-test=approval][data-approval-id='{approvalId}']");
            await Expect(card).ToBeVisibleAsync();
            await Expect(card.Locator("[data-test=arguments]")).ToContainTextAsync("1250");
            await Expect(card.Locator("[data-test=arguments]")).ToContainTextAsync("cust_DEMO00000001");
            await Expect(card.Locator("[data-test=expires]")).ToContainTextAsync("expires in");
            await fixture.ScreenshotAsync(page, "approvals");

            await ClickUntilDialogOpensAsync(page, card.Locator("[data-test=approve]"));
            await page.Locator(".mud-dialog [data-test=reason]").FillAsync("console: customer confirmed by phone");
            await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
            var token = (await page.Locator("[data-test=confirmation-token]").InnerTextAsync()).Trim();
            Assert.False(string.IsNullOrEmpty(token));
            await Expect(card).ToHaveCountAsync(0);

            var receipt = await client.CallToolAsync("create_refund", new Dictionary<string, object?>(refund) { ["confirmation_token"] = token });
            RefusalAssert.Succeeded(receipt);
            Assert.Equal("issued", receipt.StructuredContent!.Value.GetProperty("status").GetString());

            // The approver's reason is on the approval's audit record, and the explorer shows operator events legibly.
            using (var http = fixture.Host.OperatorHttp())
            {
                var audit = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/v1/audit?tenantId=demo&kind=approval/approved&limit=50");
                Assert.Contains(audit.GetProperty("items").EnumerateArray(), i => i.GetProperty("confirmationId").GetString() == approvalId
                    && i.GetProperty("detail").GetString()!.Contains("console: customer confirmed by phone", StringComparison.Ordinal));
            }

            await page.ClickAsync("a[href='/console/audit']");
            await page.Locator("[data-test=kind]").FillAsync("operator/*");
            await page.Locator("[data-test=search]").ClickAsync();
            var modeEvent = page.Locator("[data-test=operator-event]", new() { HasText = "mode.set" }).First;
            await Expect(modeEvent).ToContainTextAsync("mode=read-write");
            await Expect(page.Locator("[data-test=actor]").First).ToContainTextAsync("operator admin");
            await fixture.ScreenshotAsync(page, "audit-operator-events");
        }
        finally
        {
            await fixture.Host.SetModeAsync("demo", "support-desk", "read-only");
        }
    }

    [Fact]
    public async Task A_viewer_sees_switches_but_has_no_enabled_flip_control_and_the_server_refuses_it_anyway()
    {
        var id = await fixture.Host.KillAsync(new { scope = "user", tenantId = "demo", userId = "someone-else", reason = "viewer test" });
        try
        {
            var page = await fixture.SignInAsync(ConsoleBrowserFixture.ViewerId, ConsoleBrowserFixture.ViewerPassword);
            await page.ClickAsync("a[href='/console/kill-switches']");
            var row = page.Locator("[data-test=switches] tr", new() { HasText = "user someone-else in demo" });
            await Expect(row).ToBeVisibleAsync();
            await Expect(row.Locator("[data-test=clear]")).ToBeDisabledAsync();
            await Expect(page.Locator("[data-test=kill-global]")).ToHaveCountAsync(0);
            await Expect(page.Locator("[data-test=read-only-note]")).ToBeVisibleAsync();

            await page.Locator("[data-test=search]").FillAsync("demo");
            var kills = page.Locator("[data-test=candidate] [data-test=kill]");
            await Expect(kills.First).ToBeVisibleAsync();
            for (var i = 0; i < await kills.CountAsync(); i++) await Expect(kills.Nth(i)).ToBeDisabledAsync();

            // Past the UI: the same account, as the console resolves it, is refused by the service layer...
            var account = await fixture.Host.Services.GetRequiredService<ConsoleAccounts>().FindAsync(ConsoleBrowserFixture.ViewerId);
            var switches = fixture.Host.Services.GetRequiredService<KillSwitchService>();
            await Assert.ThrowsAsync<ForbiddenException>(() => switches.SetAsync(account!, new KillTarget(KillScope.Tenant, TenantId: "demo"), "should not work"));
            await Assert.ThrowsAsync<ForbiddenException>(() => switches.ClearAsync(account!, id, "should not work"));

            // ...and over HTTP with the viewer's own console cookie, a role it lacks is a 403.
            var cookies = await page.Context.CookiesAsync();
            using var http = fixture.Host.Http();
            http.DefaultRequestHeaders.Add("Cookie", string.Join("; ", cookies.Select(c => $"{c.Name}={c.Value}")));
            var export = await http.GetAsync("/console/audit/export?tenantId=demo");
            Assert.Equal(HttpStatusCode.Forbidden, export.StatusCode);

            await page.ClickAsync("a[href='/console/audit']");
            await Expect(page.Locator("[data-test=load-error]")).ToContainTextAsync("auditor");

            using var api = fixture.Host.OperatorHttp();
            var active = await api.GetFromJsonAsync<JsonElement>("/api/v1/kill-switches");
            Assert.Single(active.GetProperty("items").EnumerateArray(), s => s.GetProperty("id").GetString() == id);
            Assert.DoesNotContain(active.GetProperty("items").EnumerateArray(), s => s.GetProperty("scope").GetString() == "tenant");
        }
        finally
        {
            await fixture.Host.ClearAsync(id);
        }
    }

    [Fact]
    public async Task An_operator_runs_the_session_drill_it_passes_and_is_no_longer_stale_while_a_viewer_cannot_run_it()
    {
        var page = await fixture.SignInAsAdminAsync();
        await page.ClickAsync("a[href='/console/drills']");
        var session = page.Locator("[data-test=drill][data-level=session]");
        await Expect(session).ToBeVisibleAsync();
        await Expect(page.Locator("[data-test=drill]")).ToHaveCountAsync(7);

        await session.Locator("[data-test=run]").ClickAsync();
        await Expect(page.Locator("[data-test=drill-result]")).ToContainTextAsync("session drill passed", new() { Timeout = 60_000 });
        await Expect(session.Locator("[data-test=outcome]")).ToHaveTextAsync("passed");
        await Expect(session.Locator("[data-test=stale]")).ToHaveCountAsync(0);
        await Expect(session.Locator("[data-test=ran-by]")).ToContainTextAsync(fixture.Host.Credentials.ConsoleUser);
        await session.Locator("[data-test=toggle-steps]").ClickAsync();
        await Expect(session.Locator("[data-test=steps] li").First).ToBeVisibleAsync();
        Assert.True(await session.Locator("[data-test=steps] li").CountAsync() >= 4);
        await fixture.ScreenshotAsync(page, "drills");

        // The global level is never run without the typed phrase; backing out runs nothing.
        // A click that lands while Blazor swaps the page's event handlers (its re-render after the session drill, or
        // after the screenshots' resize) is dropped by the server; click until the dialog is open.
        var confirm = page.Locator(".mud-dialog [data-test=confirm]");
        await ClickUntilDialogOpensAsync(page, page.Locator("[data-test=drill][data-level=global] [data-test=run]"));

        await Expect(confirm).ToBeDisabledAsync();
        await page.Locator(".mud-dialog [data-test=cancel]").ClickAsync();
        await Expect(page.Locator("[data-test=drill][data-level=global] [data-test=outcome]")).ToHaveTextAsync("never run");

        var viewer = await fixture.SignInAsync(ConsoleBrowserFixture.ViewerId, ConsoleBrowserFixture.ViewerPassword);
        await viewer.ClickAsync("a[href='/console/drills']");
        var viewerSession = viewer.Locator("[data-test=drill][data-level=session]");
        await Expect(viewerSession.Locator("[data-test=outcome]")).ToHaveTextAsync("passed");
        var runs = viewer.Locator("[data-test=run]");
        await Expect(runs).ToHaveCountAsync(7);
        for (var i = 0; i < 7; i++) await Expect(runs.Nth(i)).ToBeDisabledAsync();
        await Expect(viewer.Locator("[data-test=read-only-note]")).ToBeVisibleAsync();

        // Past the UI, the service layer refuses the viewer's account too.
        var account = await fixture.Host.Services.GetRequiredService<ConsoleAccounts>().FindAsync(ConsoleBrowserFixture.ViewerId);
        var drills = fixture.Host.Services.GetRequiredService<DrillService>();
        await Assert.ThrowsAsync<ForbiddenException>(() => drills.RunAsync(account!, ControlPlane.Drills.DrillLevel.Session));
    }

    /// <summary>
    /// Clicks until a dialog is open. A click that lands while Blazor swaps the page's event handlers (a re-render after
    /// typing in the search box, after a drill, or after the screenshots' resize) is dropped by the server.
    /// </summary>
    private static async Task ClickUntilDialogOpensAsync(IPage page, ILocator target)
    {
        var dialog = page.Locator(".mud-dialog");
        for (var attempt = 0; attempt < 4 && !await dialog.First.IsVisibleAsync(); attempt++)
        {
            await target.ClickAsync();
            try
            {
                await dialog.First.WaitForAsync(new() { Timeout = 5_000 });
            }
            catch (Exception ex) when (ex is TimeoutException or PlaywrightException)
            {
                // Not open yet: click again.
            }
        }

        await Expect(dialog.First).ToBeVisibleAsync();
    }
}
