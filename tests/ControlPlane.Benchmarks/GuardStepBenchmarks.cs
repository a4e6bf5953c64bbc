using System.Text.Json;
using BenchmarkDotNet.Attributes;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.Results;
using ControlPlane.Guard.State;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Benchmarks;

/// <summary>
/// The guard's steps in-process on a running host's real services (grains, caches, the audit writer with a
/// store that does no I/O), for a read call by the demo token with valid arguments. Run in-process by the
/// suite, which starts the host once and hands it over through <see cref="Fixture"/>.
/// </summary>
[MemoryDiagnoser]
public class GuardStepBenchmarks
{
    private GuardCall _call = null!;
    private GuardPipeline _pipeline = null!;
    private GuardCallBuilder _builder = null!;
    private Func<GuardCall> _build = null!;
    private KillSwitchStep _kill = null!;
    private AuthenticationStep _authentication = null!;
    private ScopeStep _scope = null!;
    private ModeStep _mode = null!;
    private SchemaStep _schema = null!;
    private RateLimitStep _rateLimit = null!;
    private AgentTokenValidator _tokens = null!;
    private CallAuditor _auditor = null!;
    private ResultShaper _shaper = null!;
    private GuardStateCache _guardState = null!;
    private CallToolResult _result = null!;
    private string _bearer = null!;

    /// <summary>What the suite passes in: a started host (audit discarded) and an unshaped lookup result.</summary>
    internal static (BenchHost Host, CallToolResult LookupResult)? Fixture { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (host, result) = Fixture ?? throw new InvalidOperationException("Run through the suite: it starts the host these benchmarks use.");
        var services = host.Services;
        _bearer = host.Credentials.AgentToken;
        _tokens = services.GetRequiredService<AgentTokenValidator>();
        var (_, granted) = _tokens.ValidateAsync(_bearer, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        var tool = services.GetRequiredService<ToolCatalog>().Find(null, "lookup_customer_by_email")!;
        var arguments = new Dictionary<string, JsonElement> { ["email"] = JsonSerializer.SerializeToElement("ada@example.com") };
        _builder = services.GetRequiredService<GuardCallBuilder>();
        _build = () => _builder.ForTool(new CallIdentity("demo", "demo-agent", "demo-user", "bench-session", tool.ServerId, tool.ToolName), granted!.Token, granted.Grant, tool, arguments);
        _call = _build();
        _pipeline = services.GetRequiredService<GuardPipeline>();
        _kill = services.GetRequiredService<KillSwitchStep>();
        _authentication = services.GetRequiredService<AuthenticationStep>();
        _scope = services.GetRequiredService<ScopeStep>();
        _mode = services.GetRequiredService<ModeStep>();
        _schema = services.GetRequiredService<SchemaStep>();
        _rateLimit = services.GetRequiredService<RateLimitStep>();
        _auditor = services.GetRequiredService<CallAuditor>();
        _shaper = services.GetRequiredService<ResultShaper>();
        _guardState = services.GetRequiredService<GuardStateCache>();
        _result = result;
    }

    [Benchmark(Description = "kill check")]
    public ValueTask<Refusal?> KillCheck() => _kill.CheckAsync(_call, CancellationToken.None);

    [Benchmark(Description = "token check (bearer parse + hash compare, cached record)")]
    public async ValueTask<TokenStatus> TokenCheck() => (await _tokens.ValidateAsync(_bearer, CancellationToken.None)).Status;

    [Benchmark(Description = "token status step")]
    public ValueTask<Refusal?> AuthenticationStep() => _authentication.CheckAsync(_call, CancellationToken.None);

    [Benchmark(Description = "scope + mode")]
    public async ValueTask<Refusal?> ScopeAndMode() => await _scope.CheckAsync(_call, CancellationToken.None) ?? await _mode.CheckAsync(_call, CancellationToken.None);

    [Benchmark(Description = "schema validation")]
    public ValueTask<Refusal?> Schema() => _schema.CheckAsync(_call, CancellationToken.None);

    [Benchmark(Description = "bucket check (3 buckets, on a silo-local lease; the tenant grain only when it runs out)")]
    public ValueTask<Refusal?> Buckets() => _rateLimit.CheckAsync(_call, CancellationToken.None);

    [Benchmark(Description = "call build + audit begin (keyed hash + redact)")]
    public CallAudit AuditBegin() => _auditor.Begin(_build());

    [Benchmark(Description = "audit result enqueue (result hash + group commit, store does no I/O)")]
    public Task AuditResult() => _auditor.Begin(_call).RecordResultAsync(_result);

    [Benchmark(Description = "projection (default PII redaction of the result)")]
    public CallToolResult Projection() => _shaper.Shape(_result, _guardState.Policy.Projection(_call.Tool!));

    [Benchmark(Description = "whole guard pipeline (7 steps)")]
    public ValueTask<Refusal?> WholePipeline() => _pipeline.EvaluateAsync(_call, CancellationToken.None);
}
