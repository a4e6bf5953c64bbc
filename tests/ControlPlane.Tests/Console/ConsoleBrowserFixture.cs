using ControlPlane.Host.Security;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Playwright;

namespace ControlPlane.Tests.Console;

/// <summary>
/// One real host (with a configured viewer account beside the seeded admin) and Debian's Chromium driven by
/// Playwright. The browser is never downloaded: <c>.ci/run</c> installs the chromium package.
/// </summary>
public sealed class ConsoleBrowserFixture : IAsyncLifetime
{
    public const string ViewerId = "night-viewer";
    public const string ViewerPassword = "viewer-pass-7Qk2";
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright _playwright = null!;

    public ControlPlaneTestHost Host { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Where screenshots go: CONTROLPLANE_TEST_ARTIFACTS, or artifacts/console beside the test assembly.</summary>
    public string ArtifactsDir { get; } = Environment.GetEnvironmentVariable("CONTROLPLANE_TEST_ARTIFACTS") is { Length: > 0 } dir
        ? Path.Combine(dir, "console")
        : Path.Combine(AppContext.BaseDirectory, "artifacts", "console");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(ArtifactsDir);
        Host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:Console:Operators:0:Id"] = ViewerId,
            ["ControlPlane:Console:Operators:0:PasswordHash"] = PasswordHasher.Hash(ViewerPassword),
            ["ControlPlane:Console:Operators:0:Roles:0"] = "viewer",
        });

        if (!File.Exists(ChromiumPath)) throw new InvalidOperationException($"{ChromiumPath} is missing: install Debian's chromium package (.ci/run does).");
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        });
        Assertions.SetDefaultExpectTimeout(20_000);
    }

    /// <summary>A fresh browser session (own cookies), signed in as the given operator, on the overview.</summary>
    public async Task<IPage> SignInAsync(string user, string password, int width = 1366, int height = 900)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Host.BaseUrl.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
        });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        var console = new List<string>();
        page.Console += (_, message) => console.Add($"{message.Type}: {message.Text}");
        page.PageError += (_, error) => console.Add("page error: " + error);
        await page.GotoAsync("/console");
        await page.WaitForURLAsync("**/console/signin**", new() { WaitUntil = WaitUntilState.Commit });
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", password);
        await page.ClickAsync("button[type=submit]");
        try
        {
            // Reaching the URL is the sign-in's answer; the overview's own element is waited for below. Waiting for
            // the page's load event as well timed out on a loaded runner with the overview already on screen.
            await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/console", new() { WaitUntil = WaitUntilState.Commit });
        }
        catch (TimeoutException ex)
        {
            throw new InvalidOperationException($"Sign-in as {user} did not reach the overview; the browser is at {page.Url}: {await page.InnerTextAsync("body")}", ex);
        }

        try
        {
            await Assertions.Expect(page.Locator("[data-test=call-rate]")).ToBeVisibleAsync();
        }
        catch (PlaywrightException ex)
        {
            throw new InvalidOperationException($"The overview did not render for {user}. Browser console: {string.Join(" | ", console)}. Page: {await page.InnerTextAsync("body")}", ex);
        }

        return page;
    }

    public Task<IPage> SignInAsAdminAsync(int width = 1366, int height = 900) =>
        SignInAsync(Host.Credentials.ConsoleUser, Host.Credentials.ConsolePassword, width, height);

    /// <summary>Saves the page at desktop width and at phone width (390 px), then restores the size.</summary>
    public async Task ScreenshotAsync(IPage page, string name)
    {
        var (width, height) = page.ViewportSize is { } size ? (size.Width, size.Height) : (1366, 900);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDir, $"{name}-desktop.png"), FullPage = true });
        await page.SetViewportSizeAsync(390, 844);
        await Task.Delay(400);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDir, $"{name}-phone.png"), FullPage = true });
        await page.SetViewportSizeAsync(width, height);
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        if (Host is not null) await Host.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ConsoleBrowserCollection : ICollectionFixture<ConsoleBrowserFixture>
{
    public const string Name = "console in a browser";
}
