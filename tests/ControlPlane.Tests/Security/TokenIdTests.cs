using System.Net;
using System.Text;
using ControlPlane.Audit.Redaction;
using ControlPlane.Guard.Authentication;
using ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Tests.Security;

public sealed class TokenIdUnitTests
{
    [Fact]
    public void Minted_ids_verify_and_a_changed_digit_or_another_clusters_key_does_not()
    {
        var time = new FakeTimeProvider();
        var ours = new TokenIds(new ArgumentHasher(Enumerable.Repeat((byte)7, 32).ToArray()), time);
        var theirs = new TokenIds(new ArgumentHasher(Enumerable.Repeat((byte)8, 32).ToArray()), time);
        for (var i = 0; i < 200; i++)
        {
            var id = ours.NewId();
            Assert.Equal(TokenIdKind.Tagged, ours.Classify(id));
            Assert.Equal(TokenIdKind.Forged, theirs.Classify(id));
            var flipped = id[..(i % id.Length)] + (id[i % id.Length] == '0' ? '1' : '0') + id[(i % id.Length + 1)..];
            Assert.Equal(TokenIdKind.Forged, ours.Classify(flipped));
        }

        Assert.Equal(TokenIdKind.Untagged, ours.Classify("0123456789abcdef"));
        Assert.Equal(TokenIdKind.Untagged, ours.Classify(ours.NewId().ToUpperInvariant()));
    }

    [Fact]
    public void Lookups_of_untagged_ids_are_budgeted_per_silo()
    {
        var time = new FakeTimeProvider();
        var ids = new TokenIds(new ArgumentHasher(new byte[32]), time);
        var allowed = Enumerable.Range(0, 1000).Count(_ => ids.TryAffordUntaggedLookup());
        Assert.Equal(50, allowed);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(10, Enumerable.Range(0, 1000).Count(_ => ids.TryAffordUntaggedLookup()));
    }
}

/// <summary>Made-up token ids cost no grain activations: the tag is checked in memory first.</summary>
[Collection(SecurityHostCollection.Name)]
public sealed class TokenIdActivationTests(SecurityHostFixture fixture)
{
    private const string Initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}""";

    [Fact]
    public async Task Random_token_ids_are_401_without_activating_a_token_grain_per_id()
    {
        var host = fixture.Host;
        var (real, _) = await host.MintAsync("demo", "tagged-agent", scopes: ["server:lab:read"]);
        var realId = real.Split('_')[1];
        Assert.Equal(32, realId.Length);

        var management = host.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0);
        async Task<int> TokenGrains() => (await management.GetSimpleGrainStatistics())
            .Where(s => s.GrainType.Contains("AgentTokenGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
        var before = await TokenGrains();

        using var http = host.Http();
        var random = new Random(20261125);
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 300; i++)
        {
            // Half look like tagged ids with a made-up tag, half like the old untagged ids.
            var id = i % 2 == 0 ? RandomHex(random, 32) : RandomHex(random, 16);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(Initialize, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("Authorization", $"Bearer cpt_{id}_{new string('A', 43)}");
            request.Headers.TryAddWithoutValidation("Accept", "application/json, text/event-stream");
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(request)).StatusCode);
        }

        // The untagged half may spend the per-silo budget (50 at once, then 10 a second over however long the loop took
        // on this machine), never one each.
        var seconds = elapsed.Elapsed.TotalSeconds;
        var added = await TokenGrains() - before;
        Assert.True(added <= 50 + (int)Math.Ceiling(10 * seconds) + 1, $"{added} token grains were activated for 300 made-up ids in {seconds:0.0} s.");
        // On a machine slow enough that the budget itself reaches 150, the bound above is the whole claim.
        if (50 + 10 * seconds < 150) Assert.True(added < 150, $"{added} token grains were activated for 150 made-up untagged ids: one each.");

        await using var client = await host.ConnectAsync(real);
        Assert.NotEmpty(await client.ListToolsAsync());
    }

    private static string RandomHex(Random random, int length)
    {
        var bytes = new byte[length / 2];
        random.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes);
    }
}
