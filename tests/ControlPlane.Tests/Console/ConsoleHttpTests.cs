using System.Net;
using System.Text.RegularExpressions;
using ControlPlane.Host.OperatorConsole.Security;

namespace ControlPlane.Tests.Console;

/// <summary>The console's HTTP surface without a browser: headers, sign-in throttling, forgery, and the API staying apart.</summary>
[Collection(ConsoleBrowserCollection.Name)]
public sealed partial class ConsoleHttpTests(ConsoleBrowserFixture fixture)
{
    [Fact]
    public async Task Console_pages_carry_the_security_headers_and_unauthenticated_visits_go_to_sign_in()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = fixture.Host.BaseUrl };
        var home = await http.GetAsync("/console/kill-switches");
        Assert.Equal(HttpStatusCode.Redirect, home.StatusCode);
        Assert.StartsWith("/console/signin", home.Headers.Location!.PathAndQuery);

        var signIn = await http.GetAsync("/console/signin");
        Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
        var csp = string.Join(";", signIn.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Contains("script-src 'self'", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
        Assert.Equal("nosniff", signIn.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", signIn.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("same-origin", signIn.Headers.GetValues("Referrer-Policy").Single());
    }

    [Fact]
    public async Task A_sign_in_without_the_anti_forgery_token_is_refused()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = fixture.Host.BaseUrl };
        var response = await http.PostAsync("/console/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["username"] = fixture.Host.Credentials.ConsoleUser,
            ["password"] = fixture.Host.Credentials.ConsolePassword,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.False(response.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith(ConsoleAuthentication.CookieName + "=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Repeated_wrong_passwords_lock_the_account_for_a_while_with_a_clear_message()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = fixture.Host.BaseUrl };
        string? location = null;
        for (var attempt = 1; attempt <= 6; attempt++)
        {
            var response = await PostSignInAsync(http, "locked-out-operator", "wrong-" + attempt);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            location = response.Headers.Location!.OriginalString;
            if (attempt <= 5) Assert.Contains("error=invalid", location);
        }

        Assert.Contains("error=throttled", location);
        var page = await (await http.GetAsync(location)).Content.ReadAsStringAsync();
        Assert.Contains("Too many failed sign-ins", page);

        // The right password does not help while the account is locked.
        var right = await PostSignInAsync(http, "locked-out-operator", "does-not-matter");
        Assert.Contains("error=throttled", right.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task The_operator_api_ignores_console_cookies_and_still_takes_operator_keys()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = fixture.Host.BaseUrl };
        var signedIn = await PostSignInAsync(http, fixture.Host.Credentials.ConsoleUser, fixture.Host.Credentials.ConsolePassword);
        Assert.Equal("/console", signedIn.Headers.Location!.OriginalString);

        var withCookieOnly = await http.GetAsync("/api/v1/kill-switches");
        Assert.Equal(HttpStatusCode.Unauthorized, withCookieOnly.StatusCode);

        using var api = fixture.Host.OperatorHttp();
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/v1/kill-switches")).StatusCode);

        // And the console's own pages take the cookie.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/console")).StatusCode);
    }

    private static async Task<HttpResponseMessage> PostSignInAsync(HttpClient http, string user, string password)
    {
        var form = await http.GetStringAsync("/console/signin");
        var token = AntiForgeryField().Match(form).Groups[1].Value;
        return await http.PostAsync("/console/signin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token,
            ["username"] = user,
            ["password"] = password,
            ["returnUrl"] = "/console",
        }));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiForgeryField();
}
