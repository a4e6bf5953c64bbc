using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Xunit.Abstractions;
using ControlPlane.Approvals;
using ControlPlane.Drills;
using ControlPlane.Host.Operations;
using ControlPlane.Host.OperatorConsole.Components.Shared;
using ControlPlane.KillSwitches;
using ControlPlane.Operators;
using ControlPlane.Sessions;
using ControlPlane.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;

namespace ControlPlane.Tests.Security;

/// <summary>
/// Every action of the operator console, asked by every role (all-tenant and tenant-limited) for its own tenant
/// and another's. The console's pages hand the signed-in <see cref="OperatorAccount"/> to the service layer
/// (<c>ConsolePage.RunAsync</c>), which alone decides: these cells call the same service methods with the same
/// kinds of arguments the pages pass. The list of service methods comes from the console's compiled code, so a
/// page that starts calling a new service method fails the test until it has a row here.
/// </summary>
[Collection(SecurityHostCollection.Name)]
public sealed class ConsoleAuthorizationMatrixTests(SecurityHostFixture fixture, ITestOutputHelper output)
{
    private const string Own = "cmx-a";
    private const string Other = "cmx-b";

    private ControlPlaneTestHost Host => fixture.Host;

    private enum Outcome
    {
        Allowed,
        Forbidden,
        NotFound,
    }

    private sealed record Case(string Name, string Role, Reach Reach, Func<OperatorAccount, string, Task<object?>> Act, Outcome OtherTenant = Outcome.Forbidden);

    /// <summary>Service methods the console reaches that take no operator: each says what authorised the call instead.</summary>
    private static readonly Dictionary<string, string> NoOperatorArgument = new(StringComparer.Ordinal)
    {
        ["AuditService.QueryAsync"] = "runs a query that BuildQueryAsync built for the operator (role and tenants already applied)",
        ["AuditService.ExportAsync"] = "streams a query that BuildQueryAsync built for the operator (role and tenants already applied)",
        ["OperatorService.FindAsync"] = "looks up the signed-in operator's own account",
    };

    private int _unique;

    private string Unique(string prefix) => $"{prefix}-{Interlocked.Increment(ref _unique)}";

    private T Service<T>() where T : notnull => Host.Services.GetRequiredService<T>();

    private static OperatorAccount Account(string id, string role, string[] tenants) => new(id, [role], tenants, [], DateTimeOffset.UtcNow);

    private static readonly OperatorAccount Root = Account("cmx-root", OperatorRoles.Admin, []);

    private Dictionary<string, Case[]> Rows() => new(StringComparer.Ordinal)
    {
        ["KillSwitchService.SetAsync"] =
        [
            new("kill an agent", OperatorRoles.Operator, Reach.Tenant,
                async (by, t) => await Service<KillSwitchService>().SetAsync(by, new KillTarget(KillScope.Agent, TenantId: t, AgentId: Unique("cmx-agent")), "console matrix")),
            new("kill a session", OperatorRoles.Operator, Reach.Tenant, async (by, t) =>
            {
                var session = Unique("cmx-session");
                await Service<IGrainFactory>().GetGrain<ISessionGrain>(session).OpenAsync(new SessionInfo(session, t, "cmx-agent", null, "cmx-token", DateTimeOffset.UtcNow, "test"));
                return await Service<KillSwitchService>().SetAsync(by, new KillTarget(KillScope.Session, SessionId: session), "console matrix");
            }),
            new("kill a server in every tenant", OperatorRoles.Operator, Reach.AllTenants,
                async (by, _) => await Service<KillSwitchService>().SetAsync(by, new KillTarget(KillScope.Tool, ServerId: "lab", ToolName: Unique("cmx-tool")), "console matrix")),
            new("stop every tool call (global)", OperatorRoles.Operator, Reach.AllTenants, async (by, _) =>
            {
                var change = await Service<KillSwitchService>().SetAsync(by, KillTarget.Global, "console matrix: global");
                await Service<KillSwitchService>().ClearAsync(Root, change.Switch.Id, "console matrix: undo the global switch");
                return change;
            }),
        ],
        ["KillSwitchService.ListAsync"] = [new("see active switches", OperatorRoles.Viewer, Reach.Listing, async (by, _) => await Service<KillSwitchService>().ListAsync(by))],
        ["KillSwitchService.ClearAsync"] =
        [
            new("clear a tenant's switch", OperatorRoles.Operator, Reach.Tenant, async (by, t) =>
            {
                var set = await Service<KillSwitchService>().SetAsync(Root, new KillTarget(KillScope.Agent, TenantId: t, AgentId: Unique("cmx-clear")), "console matrix setup");
                return await Service<KillSwitchService>().ClearAsync(by, set.Switch.Id, "console matrix");
            }),
            new("clear a switch of every tenant", OperatorRoles.Operator, Reach.AllTenants, async (by, _) =>
            {
                var set = await Service<KillSwitchService>().SetAsync(Root, new KillTarget(KillScope.Tool, ServerId: "lab", ToolName: Unique("cmx-clear")), "console matrix setup");
                return await Service<KillSwitchService>().ClearAsync(by, set.Switch.Id, "console matrix");
            }),
        ],
        ["TenantService.ListAsync"] = [new("pick a tenant", OperatorRoles.Viewer, Reach.Listing, async (by, _) => await Service<TenantService>().ListAsync(by))],
        ["TokenService.ListAsync"] = [new("see a tenant's tokens", OperatorRoles.Viewer, Reach.Tenant, async (by, t) => await Service<TokenService>().ListAsync(by, t))],
        ["TokenService.MintAsync"] = [new("mint a token", OperatorRoles.Admin, Reach.Tenant,
            async (by, t) => await Service<TokenService>().MintAsync(by, t, Unique("cmx-agent"), null, ["server:lab:read"], 3600))],
        ["TokenService.RevokeAsync"] = [new("revoke a token", OperatorRoles.Admin, Reach.Tenant, async (by, t) =>
        {
            var minted = await Service<TokenService>().MintAsync(Root, t, Unique("cmx-revoke"), null, ["server:lab:read"], 3600);
            return await Service<TokenService>().RevokeAsync(by, t, minted.Info.Id);
        })],
        ["PolicyService.ListServersAsync"] = [new("see servers and modes", OperatorRoles.Viewer, Reach.Tenant, async (by, t) => await Service<PolicyService>().ListServersAsync(by, t))],
        ["PolicyService.ListRateLimitsAsync"] = [new("see rate limits", OperatorRoles.Viewer, Reach.Tenant, async (by, t) => await Service<PolicyService>().ListRateLimitsAsync(by, t))],
        ["PolicyService.SetModeAsync"] =
        [
            new("make a server read-only", OperatorRoles.Operator, Reach.Tenant, async (by, t) => await Service<PolicyService>().SetModeAsync(by, t, "lab", "read-only", "console matrix")),
            new("allow actions (read-write)", OperatorRoles.Admin, Reach.Tenant, async (by, t) => await Service<PolicyService>().SetModeAsync(by, t, "lab", "read-write", "console matrix")),
        ],
        ["PolicyService.SetClassificationAsync"] =
        [
            new("classify a tool for this tenant", OperatorRoles.Admin, Reach.Tenant, async (by, t) => await Service<PolicyService>().SetClassificationAsync(by, "lab", "flaky", "read", t, "console matrix")),
            new("classify a tool for every tenant", OperatorRoles.Admin, Reach.AllTenants, async (by, _) => await Service<PolicyService>().SetClassificationAsync(by, "lab", "flaky", "read", null, "console matrix")),
        ],
        ["PolicyService.SetSchemaAsync"] =
        [
            new("tighten a schema for this tenant", OperatorRoles.Admin, Reach.Tenant, async (by, t) => await Service<PolicyService>().SetSchemaAsync(by, "lab", "flaky", ObjectSchema, t, "console matrix")),
            new("tighten a schema for every tenant", OperatorRoles.Admin, Reach.AllTenants, async (by, _) => await Service<PolicyService>().SetSchemaAsync(by, "lab", "flaky", ObjectSchema, null, "console matrix")),
        ],
        ["PolicyService.SetProjectionAsync"] =
        [
            new("save a projection", OperatorRoles.Admin, Reach.AllTenants, async (by, _) => await Service<PolicyService>().SetProjectionAsync(by, "lab", "flaky", ["/ok"], null, null, true, remove: false, "console matrix")),
            new("remove a projection", OperatorRoles.Admin, Reach.AllTenants, async (by, _) => await Service<PolicyService>().SetProjectionAsync(by, "lab", "flaky", null, null, null, null, remove: true, "console matrix")),
        ],
        ["PolicyService.SetRateLimitAsync"] = [new("set a rate limit", OperatorRoles.Admin, Reach.Tenant,
            async (by, t) => await Service<PolicyService>().SetRateLimitAsync(by, t, "agent", "cmx-limited", null, null, null, 100, 10))],
        ["ApprovalService.ListAsync"] = [new("see pending approvals", OperatorRoles.Viewer, Reach.Listing, async (by, _) => await Service<ApprovalService>().ListAsync(by, "pending", null))],
        // Every viewer sees an approval; only an approver of its tenant sees (and is audited seeing) its exact arguments.
        ["ApprovalService.ShowAsync"] = [new("see an approval's exact arguments", OperatorRoles.Approver, Reach.Tenant, async (by, t) =>
        {
            var view = (await Service<IGrainFactory>().GetGrain<IApprovalGrain>(await OpenApprovalAsync(t)).GetAsync())!;
            var entry = await Service<ApprovalService>().ShowAsync(by, view);
            return entry.Exact ? entry : throw new ForbiddenException("shown redacted");
        })],
        ["ApprovalService.ApproveAsync"] = [new("approve", OperatorRoles.Approver, Reach.Tenant,
            async (by, t) => (await Service<ApprovalService>().ApproveAsync(by, await OpenApprovalAsync(t))).View, OtherTenant: Outcome.NotFound)],
        ["ApprovalService.DenyAsync"] = [new("deny", OperatorRoles.Approver, Reach.Tenant,
            async (by, t) => await Service<ApprovalService>().DenyAsync(by, await OpenApprovalAsync(t), "console matrix"), OtherTenant: Outcome.NotFound)],
        ["AuditService.BuildQueryAsync"] =
        [
            new("search the audit", OperatorRoles.Auditor, Reach.Listing, async (by, _) => await AuditItemsAsync(by, null)),
            new("search a tenant's audit", OperatorRoles.Auditor, Reach.Tenant, async (by, t) => await AuditItemsAsync(by, t)),
            new("export the audit (download)", OperatorRoles.Auditor, Reach.Listing, async (by, _) => await ExportAsync(by)),
        ],
        ["AuditService.VerifyAsync"] = [new("verify a tenant's chain", OperatorRoles.Auditor, Reach.Tenant, async (by, t) => await Service<AuditService>().VerifyAsync(by, t, CancellationToken.None))],
        ["DrillService.ListAsync"] = [new("see drill status", OperatorRoles.Viewer, Reach.NoTenant, async (by, _) => await Service<DrillService>().ListAsync(by))],
        ["DrillService.RunAsync"] =
        [
            new("run a session drill", OperatorRoles.Operator, Reach.NoTenant, async (by, _) => await Service<DrillService>().RunAsync(by, DrillLevel.Session)),
            new("run the global drill", OperatorRoles.Operator, Reach.AllTenants, async (by, _) => await Service<DrillService>().RunAsync(by, DrillLevel.Global, confirmGlobal: true)),
        ],
    };

    private static readonly JsonElement ObjectSchema = JsonDocument.Parse("""{"type":"object"}""").RootElement.Clone();

    [Fact]
    public void Every_service_method_the_console_calls_has_a_row_in_the_matrix()
    {
        var used = ConsoleServiceCalls();
        Assert.Contains("KillSwitchService.SetAsync", used.Keys); // the scan itself works
        output.WriteLine("The console calls: " + string.Join(", ", used.Keys.Order(StringComparer.Ordinal)));
        var rows = Rows();
        var missing = used.Where(u => !rows.ContainsKey(u.Key) && !NoOperatorArgument.ContainsKey(u.Key))
            .Select(u => $"{u.Key} (called from {string.Join(", ", u.Value.Order(StringComparer.Ordinal))})").ToList();
        var stale = rows.Keys.Concat(NoOperatorArgument.Keys).Where(k => !used.ContainsKey(k)).ToList();
        Assert.True(missing.Count == 0,
            $"The console calls these service methods that have no authorization row: {string.Join("; ", missing)}. Add a row to {nameof(ConsoleAuthorizationMatrixTests)}.{nameof(Rows)}.");
        Assert.True(stale.Count == 0, $"These rows name service methods the console no longer calls: {string.Join("; ", stale)}.");

        // Anything that takes an operator must be decided by a row, not waved through as 'no operator'.
        foreach (var exempt in NoOperatorArgument.Keys)
        {
            var (type, method) = (exempt.Split('.')[0], exempt.Split('.')[1]);
            var overloads = typeof(KillSwitchService).Assembly.GetTypes().Single(t => t.Name == type).GetMethods().Where(m => m.Name == method);
            Assert.All(overloads, m => Assert.DoesNotContain(m.GetParameters(), p => p.ParameterType == typeof(OperatorAccount)));
        }
    }

    [Fact]
    public async Task Every_console_action_gives_each_role_and_tenant_reach_exactly_what_it_allows()
    {
        await Host.EnsureTenantAsync(Own);
        await Host.EnsureTenantAsync(Other);

        // Something of the other tenant in every listing, so a leak would show.
        await Service<KillSwitchService>().SetAsync(Root, new KillTarget(KillScope.Agent, TenantId: Other, AgentId: "cmx-visible"), "console matrix: other tenant's switch");
        await OpenApprovalAsync(Other);
        await Service<ApprovalService>().DenyAsync(Root, await OpenApprovalAsync(Other), "audit record for the other tenant");
        await Service<TokenService>().MintAsync(Root, Other, "cmx-visible", null, ["server:lab:read"], 3600);
        await Service<AuditService>().VerifyAsync(Root, Other, CancellationToken.None);

        var principals = OperatorRoles.All
            .SelectMany(role => new[] { (Account: Account($"cmx-{role}-all", role, []), Limited: false), (Account: Account($"cmx-{role}-limited", role, [Own]), Limited: true) })
            .ToList();

        var failures = new List<string>();
        var cells = 0;
        var allowed = 0;
        foreach (var (method, cases) in Rows())
        {
            foreach (var @case in cases)
            {
                foreach (var tenant in @case.Reach == Reach.Tenant ? new[] { Own, Other } : [Own])
                {
                    foreach (var (account, limited) in principals)
                    {
                        var expected = Expected(account, limited, @case, tenant);
                        var (actual, result, error) = await RunAsync(@case, account, tenant);
                        cells++;
                        if (actual == Outcome.Allowed) allowed++;
                        var where = $"{method} [{@case.Name}] tenant {tenant} as {account.Id}";
                        if (error is not null)
                        {
                            failures.Add($"{where}: threw {error}, expected {expected}");
                        }
                        else if (actual != expected)
                        {
                            failures.Add($"{where}: {actual}, expected {expected}");
                        }
                        else if (@case.Reach == Reach.Listing && actual == Outcome.Allowed)
                        {
                            var json = JsonSerializer.Serialize(result);
                            if (limited && json.Contains($"\"{Other}\"", StringComparison.Ordinal)) failures.Add($"{where}: shows tenant {Other}'s items");
                            if (!limited && !json.Contains(Other, StringComparison.Ordinal)) failures.Add($"{where}: an all-tenant operator should see {Other}'s items (is the leak check blind?)");
                        }
                    }
                }
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cells} cells wrong:\n" + string.Join("\n", failures));
        output.WriteLine($"{cells} cells over {Rows().Values.Sum(c => c.Length)} console actions, {allowed} allowed, {cells - allowed} refused.");
        Assert.True(cells > 300 && allowed > 50 && allowed < cells - 100, $"{cells} cells, {allowed} allowed: the matrix is not exercising both sides.");
        await ClearMatrixSwitchesAsync();
    }

    /// <summary>The policy, stated once: admin implies every role; a limited operator reaches only its own tenant.</summary>
    private static Outcome Expected(OperatorAccount account, bool limited, Case @case, string tenant)
    {
        var role = account.Roles[0];
        if (role != OperatorRoles.Admin && role != @case.Role) return Outcome.Forbidden;
        if (limited && @case.Reach == Reach.AllTenants) return Outcome.Forbidden;
        if (limited && @case.Reach == Reach.Tenant && tenant != Own) return @case.OtherTenant;
        return Outcome.Allowed;
    }

    private static async Task<(Outcome Outcome, object? Result, string? Error)> RunAsync(Case @case, OperatorAccount by, string tenant)
    {
        try
        {
            return (Outcome.Allowed, await @case.Act(by, tenant), null);
        }
        catch (ForbiddenException)
        {
            return (Outcome.Forbidden, null, null);
        }
        catch (NotFoundException)
        {
            return (Outcome.NotFound, null, null);
        }
        catch (Exception ex)
        {
            return (Outcome.Allowed, null, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>What the Audit page does: build the query for the operator, then run it.</summary>
    private async Task<object?> AuditItemsAsync(OperatorAccount by, string? tenantId)
    {
        var service = Service<AuditService>();
        var parameters = new Dictionary<string, StringValues> { ["limit"] = "1000" };
        if (tenantId is not null) parameters["tenantId"] = tenantId;
        var query = await service.BuildQueryAsync(by, new QueryCollection(parameters));
        return (await service.QueryAsync(query, CancellationToken.None)).Items.Select(r => r.Entry.TenantId).ToList();
    }

    /// <summary>What the console's audit download does (same service calls as /api/v1/audit/export).</summary>
    private async Task<object?> ExportAsync(OperatorAccount by)
    {
        var service = Service<AuditService>();
        var query = await service.BuildQueryAsync(by, new QueryCollection(new Dictionary<string, StringValues> { ["format"] = "jsonl" }));
        var tenants = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var record in service.ExportAsync(query, CancellationToken.None)) tenants.Add(record.Entry.TenantId);
        return tenants.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>An open approval request in the tenant, as the confirmation step would open it.</summary>
    private async Task<string> OpenApprovalAsync(string tenantId)
    {
        var grains = Service<IGrainFactory>();
        var id = Unique("cmx-approval");
        var now = DateTimeOffset.UtcNow;
        await grains.GetGrain<IApprovalGrain>(id).OpenAsync(new ApprovalRequest(id, tenantId, "cmx-agent", "cmx-user", null, "cmx-token", "lab", "echo_action",
            """{"text":"matrix"}""", "hash-" + id, now, now.AddMinutes(30), TimeSpan.FromMinutes(5),
            Service<ControlPlane.Guard.Approvals.ApprovalArgumentSeal>().Seal(id, """{"text":"matrix exact"}""")));
        await grains.GetGrain<IApprovalIndexGrain>(tenantId).AddAsync(id, "dedup-" + id);
        return id;
    }

    private async Task ClearMatrixSwitchesAsync()
    {
        foreach (var active in await Service<KillSwitchService>().ListAsync(Root))
        {
            if (active.Reason.StartsWith("console matrix", StringComparison.Ordinal)) await Service<KillSwitchService>().ClearAsync(Root, active.Id, "console matrix done");
        }
    }

    /// <summary>
    /// The public methods of the service layer (<c>*Service</c> in ControlPlane.Host.Operations) that the console's
    /// compiled code calls, directly or through helpers of the host it calls (e.g. the audit download goes through
    /// AuditApi). Found by reading the IL of every console type, lambdas and async state machines included.
    /// </summary>
    private static Dictionary<string, HashSet<string>> ConsoleServiceCalls()
    {
        var host = typeof(ConsolePage).Assembly;
        var found = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var seen = new HashSet<MethodBase>();
        var queue = new Queue<(MethodBase Method, string Origin)>();
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

        foreach (var type in host.GetTypes().Where(t => t.Namespace?.StartsWith("ControlPlane.Host.OperatorConsole", StringComparison.Ordinal) == true))
        {
            var origin = Outermost(type).Name;
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all))) queue.Enqueue((method, origin));
        }

        while (queue.TryDequeue(out var next))
        {
            var (method, origin) = next;
            if (!seen.Add(method)) continue;
            if (method.GetCustomAttribute<StateMachineAttribute>() is { } machine && machine.StateMachineType.GetMethod("MoveNext", all) is { } moveNext)
            {
                queue.Enqueue((moveNext, origin));
            }

            foreach (var callee in CalledMethods(method))
            {
                var declaring = callee.DeclaringType;
                if (declaring is null || declaring.Assembly != host) continue;
                if (declaring.Namespace == typeof(KillSwitchService).Namespace && declaring.Name.EndsWith("Service", StringComparison.Ordinal) && callee.IsPublic)
                {
                    var key = $"{declaring.Name}.{callee.Name}";
                    if (!found.TryGetValue(key, out var origins)) found[key] = origins = new HashSet<string>(StringComparer.Ordinal);
                    origins.Add(origin);
                }
                else if (declaring.Namespace != typeof(KillSwitchService).Namespace)
                {
                    queue.Enqueue((callee, origin));
                }
            }
        }

        return found;
    }

    private static Type Outermost(Type type) => type.DeclaringType is { } outer ? Outermost(outer) : type;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>Methods named by call, callvirt, newobj, ldftn and ldvirtftn instructions in the method's body.</summary>
    private static IEnumerable<MethodBase> CalledMethods(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null) yield break;
        var typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var at = 0;
        while (at < il.Length)
        {
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var code = OpCodesByValue[value];
            if (code.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try
                {
                    callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, at), typeArguments, methodArguments);
                }
                catch (ArgumentException)
                {
                }

                if (callee is not null) yield return callee;
            }

            at += code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
                _ => 4,
            };
        }
    }
}
