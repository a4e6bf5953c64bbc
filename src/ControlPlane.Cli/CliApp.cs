using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace ControlPlane.Cli;

/// <summary>Where cpctl reads its environment and writes its output: the console in production, buffers in tests.</summary>
public sealed class CliContext
{
    public TextWriter Out { get; init; } = Console.Out;

    public TextWriter Error { get; init; } = Console.Error;

    public Func<string, string?> Environment { get; init; } = System.Environment.GetEnvironmentVariable;

    /// <summary>Replaces the HTTP stack (tests, custom TLS); null uses the default.</summary>
    public HttpMessageHandler? Handler { get; init; }
}

/// <summary>
/// cpctl: kill switches, approvals, audit, agent tokens and drills over the operator REST API. Human-readable
/// output by default, the server's JSON with --json; exit codes in <see cref="ExitCodes"/>.
/// </summary>
public static class CliApp
{
    public const string DefaultUrl = "http://127.0.0.1:5080";
    public const string UrlVariable = "CONTROLPLANE_URL";
    public const string KeyVariable = "CONTROLPLANE_OPERATOR_KEY";

    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        var url = new Option<string?>("--url") { Description = $"Base URL of a ControlPlane host (env {UrlVariable}, default {DefaultUrl}).", Recursive = true };
        var key = new Option<string?>("--key") { Description = $"Operator key (env {KeyVariable}). Prefer the variable: arguments show up in process lists.", Recursive = true };
        var json = new Option<bool>("--json") { Description = "Print the server's JSON instead of text.", Recursive = true };

        var root = new RootCommand("cpctl: operate ControlPlane from the command line (kill switches, approvals, audit, tokens, drills).")
        {
            url, key, json,
        };

        var globals = new Globals(url, key, json, context);
        root.Subcommands.Add(KillCommand(globals));
        root.Subcommands.Add(ApprovalsCommand(globals));
        root.Subcommands.Add(AuditCommand(globals));
        root.Subcommands.Add(TokensCommand(globals));
        root.Subcommands.Add(DrillsCommand(globals));

        var parsed = root.Parse(args);
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = context.Out, Error = context.Error }, cancellationToken);
    }

    private sealed record Globals(Option<string?> Url, Option<string?> Key, Option<bool> Json, CliContext Context);

    /// <summary>Wraps a command's work: builds the client, maps failures to exit codes, never prints the key.</summary>
    private static void Handle(Command command, Globals globals, Func<ParseResult, Invocation, Task<int>> work) =>
        command.SetAction(async (parse, ct) =>
        {
            var context = globals.Context;
            var baseText = parse.GetValue(globals.Url) ?? context.Environment(UrlVariable) ?? DefaultUrl;
            if (!Uri.TryCreate(baseText, UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
            {
                await context.Error.WriteLineAsync($"--url '{baseText}' is not an http(s) URL.");
                return ExitCodes.Usage;
            }

            var operatorKey = parse.GetValue(globals.Key) ?? context.Environment(KeyVariable);
            if (string.IsNullOrWhiteSpace(operatorKey))
            {
                await context.Error.WriteLineAsync($"No operator key: set {KeyVariable} (or pass --key).");
                return ExitCodes.Auth;
            }

            var api = ApiClient.Create(baseUrl, operatorKey.Trim(), context.Handler);
            try
            {
                return await work(parse, new Invocation(api, parse.GetValue(globals.Json), context, ct));
            }
            catch (CliFailure failure)
            {
                await context.Error.WriteLineAsync(failure.Message);
                return failure.ExitCode;
            }
        });

    private sealed record Invocation(ApiClient Api, bool Json, CliContext Context, CancellationToken Ct)
    {
        public TextWriter Out => Context.Out;

        public async Task<int> PrintAsync(JsonElement value, Func<JsonElement, IEnumerable<string>> text, int exitCode = ExitCodes.Ok)
        {
            if (Json) await Out.WriteLineAsync(JsonSerializer.Serialize(value, Pretty));
            else foreach (var line in text(value)) await Out.WriteLineAsync(line);
            return exitCode;
        }
    }

    private static Command KillCommand(Globals g)
    {
        var kill = new Command("kill", "Kill switches: stop calls at the global, server, tool, tenant, agent, user or session level.");

        var scope = new Option<string>("--scope") { Description = "global | server | tool | tenant | agent | user | session", Required = true };
        scope.AcceptOnlyFromAmong("global", "server", "tool", "tenant", "agent", "user", "session");
        var tenant = new Option<string?>("--tenant") { Description = "Tenant id (tenant, agent, user; optional for server and tool)." };
        var agent = new Option<string?>("--agent") { Description = "Agent id (agent scope)." };
        var user = new Option<string?>("--user") { Description = "User id (user scope)." };
        var session = new Option<string?>("--session") { Description = "MCP session id (session scope)." };
        var server = new Option<string?>("--server") { Description = "Tool server id (server and tool scopes)." };
        var tool = new Option<string?>("--tool") { Description = "Tool name on its server (tool scope)." };
        var reason = new Option<string>("--reason") { Description = "Why: for the next person on call.", Required = true };
        var set = new Command("set", "Set a kill switch; in force on every silo when this returns.") { scope, tenant, agent, user, session, server, tool, reason };
        Handle(set, g, async (p, run) => await run.PrintAsync(
            await run.Api.PostAsync("/api/v1/kill-switches", new
            {
                scope = p.GetValue(scope),
                tenantId = p.GetValue(tenant),
                agentId = p.GetValue(agent),
                userId = p.GetValue(user),
                sessionId = p.GetValue(session),
                serverId = p.GetValue(server),
                toolName = p.GetValue(tool),
                reason = p.GetValue(reason),
            }, run.Ct),
            s => [$"set {SwitchLine(s)}"]));

        var id = new Argument<string>("id") { Description = "The switch id (see 'kill list')." };
        var clearReason = new Option<string>("--reason") { Description = "Why it is safe to resume.", Required = true };
        var clear = new Command("clear", "Clear a kill switch.") { id, clearReason };
        Handle(clear, g, async (p, run) => await run.PrintAsync(
            await run.Api.PostAsync($"/api/v1/kill-switches/{Uri.EscapeDataString(p.GetValue(id)!)}/clear", new { reason = p.GetValue(clearReason) }, run.Ct),
            s => [$"cleared {SwitchLine(s)}"]));

        var list = new Command("list", "List the active kill switches.");
        Handle(list, g, async (_, run) => await run.PrintAsync(
            await run.Api.GetAsync("/api/v1/kill-switches", run.Ct),
            r => Items(r) is { Count: > 0 } items ? items.Select(SwitchLine) : ["no active kill switches"]));

        kill.Subcommands.Add(set);
        kill.Subcommands.Add(clear);
        kill.Subcommands.Add(list);
        return kill;
    }

    private static string SwitchLine(JsonElement s)
    {
        var target = string.Join(" ", new[] { "tenantId", "agentId", "userId", "sessionId", "serverId", "toolName" }
            .Where(n => s.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.String)
            .Select(n => $"{n}={s.GetProperty(n).GetString()}"));
        return $"{Text(s, "id")}  {Text(s, "scope")}{(target.Length > 0 ? " " + target : "")}  by {Text(s, "setBy")} at {Text(s, "setAt")}: {Text(s, "reason")}";
    }

    private static Command ApprovalsCommand(Globals g)
    {
        var approvals = new Command("approvals", "Human confirmation of action tools: list, approve, deny.");

        var status = new Option<string?>("--status") { Description = "pending (default), approved, denied, expired, consumed, or all." };
        var tenant = new Option<string?>("--tenant") { Description = "Only this tenant." };
        var list = new Command("list", "List approval requests.") { status, tenant };
        Handle(list, g, async (p, run) =>
        {
            var query = Query(("status", p.GetValue(status) is "all" ? null : p.GetValue(status) ?? "pending"), ("tenantId", p.GetValue(tenant)));
            return await run.PrintAsync(await run.Api.GetAsync("/api/v1/approvals" + query, run.Ct),
                r => Items(r) is { Count: > 0 } items
                    ? items.Select(a => $"{Text(a, "id")}  {Text(a, "status")}  {Text(a, "tenantId")}/{Text(a, "agentId")}  {Text(a, "toolKey")}  expires {Text(a, "expiresAt")}  args {a.GetProperty("arguments").GetRawText()}")
                    : ["no approval requests"]);
        });

        var id = new Argument<string>("id") { Description = "The approval id." };
        var approveReason = new Option<string?>("--reason") { Description = "Why (optional; kept on the approval and in the audit)." };
        var approve = new Command("approve", "Approve a request; prints the one-time confirmation token for the agent.") { id, approveReason };
        Handle(approve, g, async (p, run) => await run.PrintAsync(
            await run.Api.PostAsync($"/api/v1/approvals/{Uri.EscapeDataString(p.GetValue(id)!)}/approve",
                p.GetValue(approveReason) is { } why ? new { reason = why } : null, run.Ct),
            r => [$"approved; confirmation token (shown once, valid until {Text(r, "expiresAt")}):", Text(r, "confirmationToken")]));

        var denyId = new Argument<string>("id") { Description = "The approval id." };
        var reason = new Option<string>("--reason") { Description = "Why not.", Required = true };
        var deny = new Command("deny", "Deny a request.") { denyId, reason };
        Handle(deny, g, async (p, run) => await run.PrintAsync(
            await run.Api.PostAsync($"/api/v1/approvals/{Uri.EscapeDataString(p.GetValue(denyId)!)}/deny", new { reason = p.GetValue(reason) }, run.Ct),
            r => [$"denied {Text(r, "id")}"]));

        approvals.Subcommands.Add(list);
        approvals.Subcommands.Add(approve);
        approvals.Subcommands.Add(deny);
        return approvals;
    }

    private static Command AuditCommand(Globals g)
    {
        var audit = new Command("audit", "Read, export and verify the audit trail.");

        Option<string?> Filter(string name, string description) => new(name) { Description = description };
        var tenant = Filter("--tenant", "Tenant id.");
        var agent = Filter("--agent", "Agent id.");
        var user = Filter("--user", "User id.");
        var session = Filter("--session", "Session id.");
        var tool = Filter("--tool", "Tool name.");
        var decision = Filter("--decision", "allowed or refused.");
        var outcome = Filter("--outcome", "success, error, refused or pending.");
        var from = Filter("--from", "ISO 8601 start time.");
        var to = Filter("--to", "ISO 8601 end time.");
        var kind = Filter("--kind", "Record kind, exact (operator/token.mint) or a prefix ending in * (operator/*).");
        Option[] filters = [tenant, agent, user, session, tool, decision, outcome, from, to, kind];
        (string, string?)[] FilterValues(ParseResult p) =>
        [
            ("tenantId", p.GetValue(tenant)), ("agentId", p.GetValue(agent)), ("userId", p.GetValue(user)), ("sessionId", p.GetValue(session)),
            ("tool", p.GetValue(tool)), ("decision", p.GetValue(decision)), ("outcome", p.GetValue(outcome)), ("from", p.GetValue(from)), ("to", p.GetValue(to)),
            ("kind", p.GetValue(kind)),
        ];

        var limit = new Option<int>("--limit", "-n") { Description = "How many records, newest first (1-1000).", DefaultValueFactory = _ => 20 };
        var tail = new Command("tail", "Show the newest audit records.") { limit };
        foreach (var f in filters) tail.Options.Add(f);
        Handle(tail, g, async (p, run) =>
        {
            var query = Query([.. FilterValues(p), ("limit", p.GetValue(limit).ToString(CultureInfo.InvariantCulture))]);
            return await run.PrintAsync(await run.Api.GetAsync("/api/v1/audit" + query, run.Ct),
                r => Items(r) is { Count: > 0 } items
                    ? items.AsEnumerable().Reverse().Select(a =>
                        $"{Text(a, "timestamp")}  {Text(a, "tenantId")}/{Text(a, "agentId")}  {Text(a, "kind")} {Text(a, "server")}/{Text(a, "tool")}  {Text(a, "decision")}{(Text(a, "code") is { Length: > 0 } code ? " " + code : "")}  {Text(a, "outcome")}")
                    : ["no audit records match"]);
        });

        var format = new Option<string>("--format") { Description = "jsonl or csv.", DefaultValueFactory = _ => "jsonl" };
        format.AcceptOnlyFromAmong("jsonl", "csv");
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write to this file instead of standard output." };
        var export = new Command("export", "Stream the audit records that match, as JSON lines or CSV.") { format, output };
        foreach (var f in filters) export.Options.Add(f);
        Handle(export, g, async (p, run) =>
        {
            var path = "/api/v1/audit/export" + Query([("format", p.GetValue(format)), .. FilterValues(p)]);
            if (p.GetValue(output) is { } file)
            {
                await using var stream = file.Create();
                await run.Api.StreamAsync(path, stream, run.Ct);
            }
            else
            {
                await run.Api.StreamAsync(path, run.Out, run.Ct);
            }

            return ExitCodes.Ok;
        });

        var verifyTenant = new Option<string>("--tenant") { Description = "The tenant whose hash chain to verify.", Required = true };
        var verify = new Command("verify", "Verify a tenant's audit hash chain. Exit 0 intact, 4 broken.") { verifyTenant };
        Handle(verify, g, async (p, run) =>
        {
            var result = await run.Api.GetAsync("/api/v1/audit/verify" + Query(("tenantId", p.GetValue(verifyTenant))), run.Ct);
            var ok = result.GetProperty("ok").GetBoolean();
            return await run.PrintAsync(result,
                r => ok
                    ? [$"intact: {r.GetProperty("checked").GetInt64()} records checked"]
                    : [$"BROKEN at record {(r.TryGetProperty("firstBroken", out var b) ? b.ToString() : "?")} after {r.GetProperty("checked").GetInt64()} records checked"],
                ok ? ExitCodes.Ok : ExitCodes.Refused);
        });

        audit.Subcommands.Add(tail);
        audit.Subcommands.Add(export);
        audit.Subcommands.Add(verify);
        return audit;
    }

    private static Command TokensCommand(Globals g)
    {
        var tokens = new Command("tokens", "Agent tokens: mint, list, revoke.");

        var tenant = new Option<string>("--tenant") { Description = "Tenant id.", Required = true };
        var agent = new Option<string>("--agent") { Description = "Agent id the token is for.", Required = true };
        var user = new Option<string?>("--user") { Description = "Pin the token to one user." };
        var scopes = new Option<string[]>("--scope") { Description = "server:<id>:read, server:<id>:write or tool:<server>/<tool>; repeat for more.", AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.OneOrMore, Required = true };
        var expires = new Option<long?>("--expires-in") { Description = "Lifetime in seconds (default 30 days)." };
        var mint = new Command("mint", "Mint an agent token; its secret is printed once.") { tenant, agent, user, scopes, expires };
        Handle(mint, g, async (p, run) => await run.PrintAsync(
            await run.Api.PostAsync($"/api/v1/tenants/{Uri.EscapeDataString(p.GetValue(tenant)!)}/tokens", new
            {
                agentId = p.GetValue(agent),
                userId = p.GetValue(user),
                scopes = p.GetValue(scopes),
                expiresInSeconds = p.GetValue(expires),
            }, run.Ct),
            r => [$"minted {Text(r, "id")} for {Text(r, "agentId")}, expires {Text(r, "expiresAt")}; token (shown once):", Text(r, "token")]));

        var listTenant = new Option<string>("--tenant") { Description = "Tenant id.", Required = true };
        var list = new Command("list", "List a tenant's tokens (never their secrets).") { listTenant };
        Handle(list, g, async (p, run) => await run.PrintAsync(
            await run.Api.GetAsync($"/api/v1/tenants/{Uri.EscapeDataString(p.GetValue(listTenant)!)}/tokens", run.Ct),
            r => Items(r) is { Count: > 0 } items
                ? items.Select(t => $"{Text(t, "id")}  {Text(t, "status")}  agent={Text(t, "agentId")}{(Text(t, "userId") is { Length: > 0 } u ? " user=" + u : "")}  scopes={string.Join(",", t.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()))}  expires {Text(t, "expiresAt")}")
                : ["no tokens"]));

        var revokeTenant = new Option<string>("--tenant") { Description = "Tenant id.", Required = true };
        var id = new Argument<string>("id") { Description = "The token id (not the secret)." };
        var revoke = new Command("revoke", "Revoke a token; refused on every silo when this returns.") { revokeTenant, id };
        Handle(revoke, g, async (p, run) => await run.PrintAsync(
            await run.Api.DeleteAsync($"/api/v1/tenants/{Uri.EscapeDataString(p.GetValue(revokeTenant)!)}/tokens/{Uri.EscapeDataString(p.GetValue(id)!)}", run.Ct),
            r => [$"revoked {Text(r, "id")} ({Text(r, "status")})"]));

        tokens.Subcommands.Add(mint);
        tokens.Subcommands.Add(list);
        tokens.Subcommands.Add(revoke);
        return tokens;
    }

    private static Command DrillsCommand(Globals g)
    {
        var drills = new Command("drills", "Kill-switch drills: prove each level stops a real call on a synthetic identity.");

        var level = new Argument<string>("level") { Description = "session | user | agent | tenant | tool | server | global" };
        level.AcceptOnlyFromAmong("session", "user", "agent", "tenant", "tool", "server", "global");
        var confirmGlobal = new Option<bool>("--confirm-global") { Description = "Required for 'global': every tenant's calls are refused for the second the drill takes." };
        var run = new Command("run", "Run one drill now. Exit 0 passed, 4 failed.") { level, confirmGlobal };
        Handle(run, g, async (p, inv) =>
        {
            var result = await inv.Api.PostAsync("/api/v1/drills", new { level = p.GetValue(level), confirmGlobal = p.GetValue(confirmGlobal) }, inv.Ct);
            var passed = result.GetProperty("passed").GetBoolean();
            return await inv.PrintAsync(result, r => DrillLines(r), passed ? ExitCodes.Ok : ExitCodes.Refused);
        });

        var list = new Command("list", "Each level's last drill, its age, and whether it is stale.");
        Handle(list, g, async (_, inv) => await inv.PrintAsync(
            await inv.Api.GetAsync("/api/v1/drills", inv.Ct),
            r => Items(r).Select(s =>
            {
                var last = s.TryGetProperty("last", out var l) ? $"last {(l.GetProperty("passed").GetBoolean() ? "passed" : "FAILED")} at {Text(l, "finishedAt")} by {Text(l, "ranBy")}" : "never drilled";
                var age = s.TryGetProperty("ageSeconds", out var a) && a.ValueKind == JsonValueKind.Number ? $", last pass {TimeSpan.FromSeconds(a.GetDouble()).TotalDays:0.#} days ago" : "";
                return $"{Text(s, "level"),-8} {(s.GetProperty("stale").GetBoolean() ? "STALE" : "ok"),-6} {(s.GetProperty("scheduled").GetBoolean() ? "scheduled" : "by hand"),-10} {last}{age}";
            })));

        drills.Subcommands.Add(run);
        drills.Subcommands.Add(list);
        return drills;
    }

    private static IEnumerable<string> DrillLines(JsonElement r)
    {
        yield return $"{Text(r, "level")} drill {(r.GetProperty("passed").GetBoolean() ? "PASSED" : "FAILED")} in {r.GetProperty("durationMs").GetDouble():0} ms ({Text(r, "id")})";
        foreach (var step in r.GetProperty("steps").EnumerateArray()) yield return "  - " + step.GetString();
        if (Text(r, "failure") is { Length: > 0 } failure) yield return "  failure: " + failure;
    }

    private static List<JsonElement> Items(JsonElement r) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty("items", out var items) ? [.. items.EnumerateArray()] : [];

    private static string Text(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText()
            : "";

    private static string Query(params (string Name, string? Value)[] parameters)
    {
        var parts = parameters.Where(p => !string.IsNullOrWhiteSpace(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join("&", parts);
    }
}
