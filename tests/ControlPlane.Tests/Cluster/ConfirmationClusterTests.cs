using ControlPlane.Approvals;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Cluster;

/// <summary>Confirmation tokens on a real two-silo cluster: consumed exactly once, and approvals outlive a silo.</summary>
public sealed class ConfirmationClusterTests
{
    private static ApprovalRequest Request(string id) => new(
        id, "t1", "a1", "u1", "s1", "tok", GuardCluster.ServerId, "action_tool", "{}", new string('a', 64),
        DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddMinutes(30), TimeSpan.FromMinutes(5));

    private static RedeemContext Call => new("t1", "a1", GuardCluster.ServerId, "action_tool", new string('a', 64), "s1");

    [Fact]
    public async Task A_thousand_concurrent_redemptions_from_two_silos_let_exactly_one_through()
    {
        await using var cluster = await GuardCluster.StartAsync(silos: 2);
        try
        {
            var id = "apr-" + Guid.NewGuid().ToString("N")[..20];
            var client = cluster.Client;
            await client.GetGrain<IApprovalGrain>(id).OpenAsync(Request(id));
            var (_, token) = await client.GetGrain<IApprovalGrain>(id).ApproveAsync("approver");
            Assert.StartsWith($"cpc_{id}_", token);
            var secret = token[^43..];

            var factories = cluster.SiloServices.Select(sp => sp.GetRequiredService<IGrainFactory>()).ToArray();
            Assert.Equal(2, factories.Length);
            using var start = new ManualResetEventSlim();
            var attempts = Enumerable.Range(0, 1000).Select(i => Task.Run(async () =>
            {
                start.Wait();
                return await factories[i % 2].GetGrain<IApprovalGrain>(id).RedeemAsync(secret, Call);
            })).ToList();
            start.Set();
            var results = await Task.WhenAll(attempts);

            Assert.Equal(1, results.Count(r => r.Outcome == RedeemOutcome.Accepted));
            Assert.Equal(999, results.Count(r => r.Outcome == RedeemOutcome.AlreadyUsed));
            Assert.Equal(ApprovalStatus.Consumed, (await client.GetGrain<IApprovalGrain>(id).GetAsync())!.Status);
        }
        finally
        {
            cluster.DeleteDatabase();
        }
    }

    [Fact]
    public async Task A_reserved_token_is_held_for_its_call_alone_and_a_lost_reservation_leaves_it_unused()
    {
        await using var cluster = await GuardCluster.StartAsync(silos: 2);
        try
        {
            var id = "apr-" + Guid.NewGuid().ToString("N")[..20];
            var factories = cluster.SiloServices.Select(sp => sp.GetRequiredService<IGrainFactory>()).ToArray();
            await factories[0].GetGrain<IApprovalGrain>(id).OpenAsync(Request(id));
            var secret = (await factories[0].GetGrain<IApprovalGrain>(id).ApproveAsync("approver")).Token[^43..];

            // Held: while one call's guard writes its intent and the consumption, any other presentation is refused.
            var held = await factories[0].GetGrain<IApprovalGrain>(id).ReserveAsync(secret, Call);
            Assert.Equal(RedeemOutcome.Accepted, held.Outcome);
            Assert.NotNull(held.Reservation);
            Assert.Equal(RedeemOutcome.AlreadyUsed, (await factories[1].GetGrain<IApprovalGrain>(id).ReserveAsync(secret, Call)).Outcome);
            Assert.Equal(RedeemOutcome.AlreadyUsed, (await factories[1].GetGrain<IApprovalGrain>(id).RedeemAsync(secret, Call)).Outcome);
            Assert.False(await factories[1].GetGrain<IApprovalGrain>(id).ConsumeAsync("not-the-reservation"));
            Assert.Equal(ApprovalStatus.Approved, (await factories[1].GetGrain<IApprovalGrain>(id).GetAsync())!.Status);

            // Lost: the grain is deactivated (as when its silo dies) before the consumption; nothing was consumed,
            // so the old reservation is void and the token is still good for one call.
            var management = cluster.Client.GetGrain<IManagementGrain>(0);
            await management.ForceActivationCollection(TimeSpan.Zero);
            Assert.False(await factories[0].GetGrain<IApprovalGrain>(id).ConsumeAsync(held.Reservation!));
            Assert.Equal(ApprovalStatus.Approved, (await factories[0].GetGrain<IApprovalGrain>(id).GetAsync())!.Status);

            var again = await factories[1].GetGrain<IApprovalGrain>(id).ReserveAsync(secret, Call);
            Assert.Equal(RedeemOutcome.Accepted, again.Outcome);
            Assert.True(await factories[1].GetGrain<IApprovalGrain>(id).ConsumeAsync(again.Reservation!));
            Assert.False(await factories[0].GetGrain<IApprovalGrain>(id).ConsumeAsync(again.Reservation!));
            var consumed = (await factories[0].GetGrain<IApprovalGrain>(id).GetAsync())!;
            Assert.Equal(ApprovalStatus.Consumed, consumed.Status);
            Assert.NotNull(consumed.ConsumedAt);
            Assert.Equal(RedeemOutcome.AlreadyUsed, (await factories[0].GetGrain<IApprovalGrain>(id).ReserveAsync(secret, Call)).Outcome);
        }
        finally
        {
            cluster.DeleteDatabase();
        }
    }

    [Fact]
    public async Task An_approval_survives_the_silo_it_lived_on()
    {
        await using var cluster = await GuardCluster.StartAsync(silos: 2);
        try
        {
            var id = "apr-" + Guid.NewGuid().ToString("N")[..20];
            var grain = cluster.Client.GetGrain<IApprovalGrain>(id);
            await grain.OpenAsync(Request(id));
            var (_, token) = await grain.ApproveAsync("approver");
            var secret = token[^43..];

            // Stop every silo but one, in turn, so whichever hosted the approval is gone.
            await cluster.Cluster.StopSiloAsync(cluster.Cluster.Silos[1]);
            await cluster.Cluster.StartAdditionalSiloAsync();
            await cluster.Cluster.StopSiloAsync(cluster.Cluster.Silos[0]);
            await cluster.WaitUntilLoadedAsync();

            var factory = cluster.SiloServices[0].GetRequiredService<IGrainFactory>();
            var view = await factory.GetGrain<IApprovalGrain>(id).GetAsync();
            Assert.Equal(ApprovalStatus.Approved, view!.Status);
            Assert.Equal("approver", view.DecidedBy);
            Assert.Equal(RedeemOutcome.Accepted, (await factory.GetGrain<IApprovalGrain>(id).RedeemAsync(secret, Call)).Outcome);
            Assert.Equal(RedeemOutcome.AlreadyUsed, (await factory.GetGrain<IApprovalGrain>(id).RedeemAsync(secret, Call)).Outcome);
        }
        finally
        {
            cluster.DeleteDatabase();
        }
    }
}
