using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.KillSwitches;
using ControlPlane.Refusals;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Cluster;

public sealed class GuardClusterFixture : IAsyncLifetime
{
    public GuardCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await GuardCluster.StartAsync(silos: 2);

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Cluster.DeleteDatabase();
    }
}

/// <summary>Kill switches on a real two-silo cluster: exact scoping, and a flip on one silo enforced by the other at once.</summary>
public sealed class KillSwitchClusterTests(GuardClusterFixture fixture) : IClassFixture<GuardClusterFixture>
{
    internal static readonly CallIdentity Base = new("t1", "a1", "u1", "s1", GuardCluster.ServerId, "read_tool");

    /// <summary>The base call and one variation per dimension a switch can name.</summary>
    private static readonly IReadOnlyDictionary<string, CallIdentity> Calls = new Dictionary<string, CallIdentity>
    {
        ["base"] = Base,
        ["other tenant"] = Base with { TenantId = "t2", SessionId = "s9" },
        ["other agent"] = Base with { AgentId = "a2", SessionId = "s8" },
        ["other user"] = Base with { UserId = "u2", SessionId = "s7" },
        ["other session"] = Base with { SessionId = "s2" },
        ["other server"] = Base with { ServerId = "srv2" },
        ["other tool"] = Base with { ToolName = "other_read" },
    };

    public static TheoryData<string, string[]> Levels => new()
    {
        // scope-under-test, and the calls it must refuse (all others must pass).
        { "global", ["base", "other tenant", "other agent", "other user", "other session", "other server", "other tool"] },
        { "server", ["base", "other tenant", "other agent", "other user", "other session", "other tool"] },
        { "server-in-tenant", ["base", "other agent", "other user", "other session", "other tool"] },
        { "tool", ["base", "other tenant", "other agent", "other user", "other session"] },
        { "tool-in-tenant", ["base", "other agent", "other user", "other session"] },
        { "tenant", ["base", "other agent", "other user", "other session", "other server", "other tool"] },
        { "agent", ["base", "other user", "other session", "other server", "other tool"] },
        { "user", ["base", "other agent", "other session", "other server", "other tool"] },
        { "session", ["base", "other server", "other tool"] },
    };

    private static KillTarget TargetFor(string level) => level switch
    {
        "global" => KillTarget.Global,
        "server" => new KillTarget(KillScope.Server, ServerId: GuardCluster.ServerId),
        "server-in-tenant" => new KillTarget(KillScope.Server, TenantId: "t1", ServerId: GuardCluster.ServerId),
        "tool" => new KillTarget(KillScope.Tool, ServerId: GuardCluster.ServerId, ToolName: "read_tool"),
        "tool-in-tenant" => new KillTarget(KillScope.Tool, TenantId: "t1", ServerId: GuardCluster.ServerId, ToolName: "read_tool"),
        "tenant" => new KillTarget(KillScope.Tenant, TenantId: "t1"),
        "agent" => new KillTarget(KillScope.Agent, TenantId: "t1", AgentId: "a1"),
        "user" => new KillTarget(KillScope.User, TenantId: "t1", UserId: "u1"),
        "session" => new KillTarget(KillScope.Session, SessionId: "s1"),
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    [Theory]
    [MemberData(nameof(Levels))]
    public async Task Each_level_refuses_exactly_the_calls_in_its_scope_on_every_silo(string level, string[] refused)
    {
        var owner = fixture.Cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        var change = await owner.SetKillSwitchAsync(TargetFor(level), "drill " + level, "test");
        try
        {
            foreach (var silo in fixture.Cluster.SiloServices)
            {
                foreach (var (name, call) in Calls)
                {
                    var refusal = await GuardCluster.EvaluateAsync(silo, call);
                    if (refused.Contains(name))
                    {
                        Assert.True(refusal is not null, $"{level} kill should refuse '{name}'.");
                        Assert.Equal(RefusalCodes.Killed, refusal!.Code);
                        Assert.Equal(change.Switch.Target.Scope.ToWireName(), refusal.Scope);
                        Assert.Equal("drill " + level, refusal.Reason);
                    }
                    else
                    {
                        Assert.True(refusal is null, $"{level} kill must not refuse '{name}', got {refusal}.");
                    }
                }
            }
        }
        finally
        {
            await owner.ClearKillSwitchAsync(change.Switch.Id, "drill over", "test");
        }

        foreach (var silo in fixture.Cluster.SiloServices)
        {
            foreach (var (name, call) in Calls)
            {
                Assert.True(await GuardCluster.EvaluateAsync(silo, call) is null, $"After clearing {level}, '{name}' should pass.");
            }
        }
    }

    [Fact]
    public async Task A_flip_made_through_one_silo_is_enforced_by_the_other_as_soon_as_it_returns()
    {
        var silos = fixture.Cluster.SiloServices;
        Assert.True(silos.Count >= 2);

        for (var from = 0; from < silos.Count; from++)
        {
            var grains = silos[from].GetRequiredService<IGrainFactory>();
            var owner = grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
            var change = await owner.SetKillSwitchAsync(new KillTarget(KillScope.Agent, TenantId: "t1", AgentId: "a1"), "flip from silo " + from, "test");

            // No waiting: the set call returns only after every silo has the new state.
            foreach (var silo in silos)
            {
                Assert.Equal(RefusalCodes.Killed, (await GuardCluster.EvaluateAsync(silo, Base))?.Code);
            }

            await owner.ClearKillSwitchAsync(change.Switch.Id, "done", "test");
            foreach (var silo in silos)
            {
                Assert.Null(await GuardCluster.EvaluateAsync(silo, Base));
            }
        }
    }

    [Fact]
    public async Task Setting_the_same_switch_twice_returns_the_existing_one()
    {
        var owner = fixture.Cluster.Client.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton);
        var target = new KillTarget(KillScope.Tenant, TenantId: "twice");
        var first = await owner.SetKillSwitchAsync(target, "first", "test");
        var second = await owner.SetKillSwitchAsync(target, "second", "test");
        try
        {
            Assert.True(first.Created);
            Assert.False(second.Created);
            Assert.Equal(first.Switch.Id, second.Switch.Id);
            Assert.Equal("first", second.Switch.Reason);
        }
        finally
        {
            await owner.ClearKillSwitchAsync(first.Switch.Id, "done", "test");
        }

        var history = await owner.GetHistoryAsync(10);
        Assert.Contains(history, e => e.SwitchId == first.Switch.Id && e.Action == "set" && e.By == "test");
        Assert.Contains(history, e => e.SwitchId == first.Switch.Id && e.Action == "clear" && e.Reason == "done");
    }
}
