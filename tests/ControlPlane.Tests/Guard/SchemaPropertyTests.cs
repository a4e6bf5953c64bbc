using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.Schemas;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using ControlPlane.Policy;
using ControlPlane.Refusals;
using ControlPlane.SupportDesk;
using ControlPlane.Tokens;
using CsCheck;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Protocol;

namespace ControlPlane.Tests.Guard;

/// <summary>
/// Random and adversarial arguments against the real create_refund schema: every input is either valid by
/// an independent reading of the rules or refused, the validator never throws, and a refused call never
/// reaches the tool.
/// </summary>
public sealed partial class SchemaPropertyTests : IDisposable
{
    private static readonly string[] Keys = ["customer_id", "amount_cents", "reason"];
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cp-prop-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly SupportDeskDatabase _database;
    private readonly ToolDescriptor _refund;

    public SchemaPropertyTests()
    {
        _database = new SupportDeskDatabase(Path.Combine(_dir, "desk.db"));
        var tool = SupportDeskServer.CreateTools(_database).Single(t => t.ProtocolTool.Name == "create_refund");
        _refund = new ToolDescriptor(SupportDeskServer.ServerId, tool.ProtocolTool, ToolClassification.Action, CountingInvoker, "create_refund");
    }

    private int _invocations;

    private ValueTask<CallToolResult> CountingInvoker(ModelContextProtocol.Server.RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _invocations);
        return ValueTask.FromResult(new CallToolResult());
    }

    [GeneratedRegex(@"\Acust_[A-Z0-9]{12}\z")]
    private static partial Regex CustomerId();

    /// <summary>The rules, read independently of any schema library.</summary>
    private static bool Oracle(JsonObject args)
    {
        if (args.Count != 3 || !Keys.All(args.ContainsKey)) return false;
        return args["customer_id"] is JsonValue id && id.TryGetValue<string>(out var s) && CustomerId().IsMatch(s)
            && args["amount_cents"] is JsonValue amount && amount.GetValueKind() == JsonValueKind.Number
                && decimal.TryParse(amount.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var cents)
                && cents == decimal.Truncate(cents) && cents >= 1 && cents <= 1_000_000
            && args["reason"] is JsonValue reason && reason.TryGetValue<string>(out var r) && SupportDeskTools.RefundReasons.Contains(r);
    }

    private static readonly Gen<string> Adversarial = Gen.OneOf(
        Gen.Const("cust_DEMO00000001"), Gen.Const("cust_DEMO00000001\n"), Gen.Const("CUST_DEMO00000001"), Gen.Const("cust_DEMO0000000１"),
        Gen.Const("cust_DEMO00000001 "), Gen.Const("cust_demo00000001"), Gen.Const(""), Gen.Const("duplicate"), Gen.Const("fraud"),
        Gen.Const("Fraud"), Gen.Const("fraud\u200b"), Gen.Const("requested"), Gen.Const("error"), Gen.Const("' OR 1=1 --"),
        Gen.Const(new string('A', 100_000)), Gen.Char.Array[0, 40].Select(c => new string(c)),
        Gen.Char['A', 'Z'].Array[12].Select(c => "cust_" + new string(c)));

    private static readonly Gen<JsonNode?> Scalar = Gen.OneOf<JsonNode?>(
        Gen.Const((JsonNode?)null),
        Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b)),
        Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.Long[-5, 1_000_005].Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.Double.Where(double.IsFinite).Select(d => (JsonNode?)JsonValue.Create(d)),
        Gen.Const<JsonNode?>(JsonValue.Create(5.0m)), Gen.Const<JsonNode?>(JsonValue.Create(1e6m)), Gen.Const<JsonNode?>(JsonValue.Create(1_000_000.5m)),
        Adversarial.Select(s => (JsonNode?)JsonValue.Create(s)));

    private static Gen<JsonNode?> Value(int depth) => depth <= 0 ? Scalar : Gen.Frequency(
        (6, Scalar),
        (1, Value(depth - 1).Array[0, 4].Select(items => (JsonNode?)new JsonArray([.. items.Select(i => i?.DeepClone())]))),
        (1, Gen.Select(Gen.String[0, 6], Value(depth - 1)).Array[0, 3].Select(pairs =>
        {
            var o = new JsonObject();
            foreach (var (k, v) in pairs) o[k] = v?.DeepClone();
            return (JsonNode?)o;
        })));

    /// <summary>A valid refund with one thing changed: the cases a validator most often gets wrong.</summary>
    private static readonly Gen<JsonObject> NearlyValid =
        Gen.Select(Gen.Int[0, 5], Scalar, Gen.String[1, 6], Gen.OneOf(Gen.Const('\n'), Gen.Const('\r'), Gen.Char)).Select((mutation, value, extraKey, stray) =>
        {
            var o = new JsonObject { ["customer_id"] = "cust_DEMO00000001", ["amount_cents"] = 1250, ["reason"] = "duplicate" };
            if (mutation == 5) o["customer_id"] = extraKey.Length % 2 == 0 ? "cust_DEMO00000001" + stray : stray + "cust_DEMO00000001";
            else if (mutation < 3) o[Keys[mutation]] = value?.DeepClone();
            else if (mutation == 3) o.Remove(Keys[value?.ToJsonString().Length % 3 ?? 0]);
            else if (!o.ContainsKey(extraKey)) o[extraKey] = value?.DeepClone();
            return o;
        });

    private static readonly Gen<JsonObject> RandomArguments =
        Gen.Select(Gen.Bool.Array[3], Value(3).Array[3], Gen.Select(Gen.OneOf(Gen.String[1, 8], Gen.Const("confirmation_token"), Gen.Const("__proto__")), Value(2)).Array[0, 2])
            .Select((present, values, extras) =>
            {
                var o = new JsonObject();
                for (var i = 0; i < 3; i++) if (present[i]) o[Keys[i]] = values[i]?.DeepClone();
                foreach (var (k, v) in extras) if (!o.ContainsKey(k)) o[k] = v?.DeepClone();
                return o;
            });

    // Declared after the generators it combines: static fields initialise in order.
    private static readonly Gen<JsonObject> Arguments = Gen.Frequency((1, NearlyValid), (1, RandomArguments));

    [Fact]
    public void The_validator_agrees_with_the_rules_and_never_throws()
    {
        var schema = _refund.InputSchema!;
        Arguments.Sample(args =>
        {
            var element = JsonSerializer.SerializeToElement(args);
            var violations = schema.Validate(element);
            var withoutConfirmation = args.DeepClone().AsObject();
            withoutConfirmation.Remove("confirmation_token");
            Assert.True(Oracle(args) == (violations.Count == 0),
                $"Validator says {(violations.Count == 0 ? "valid" : "invalid: " + string.Join("; ", violations))}, rules say {Oracle(args)}: {args.ToJsonString()}");
        }, iter: 3000, threads: 1);
    }

    [Fact]
    public async Task Refused_arguments_never_reach_the_tool()
    {
        var time = TimeProvider.System;
        var cache = new GuardStateCache(time, Options.Create(new GuardStateOptions()));
        cache.Apply(new GuardStateSnapshot(1, [], [], [new ServerModeSetting("t", SupportDeskServer.ServerId, true, "test", "test", time.GetUtcNow())]));
        var step = new SchemaStep();
        var grant = ScopeGrant.Parse(["server:support-desk:write"]);
        var token = new AgentToken("tok", "t", "a", null, ["server:support-desk:write"], [1], time.GetUtcNow(), null, null, "test");

        await Gen.Select(Arguments, Gen.Bool).SampleAsync(async (args, confirm) =>
        {
            if (confirm) args["confirmation_token"] = "cpc_whatever";
            var dictionary = args.ToDictionary(p => p.Key, p => JsonSerializer.SerializeToElement(p.Value));
            var call = GuardCalls.ForTool(cache, new CallIdentity("t", "a", null, "s", SupportDeskServer.ServerId, "create_refund"), token, grant, _refund, dictionary);
            var before = _invocations;
            var refusal = await step.CheckAsync(call, CancellationToken.None);
            if (refusal is null) await _refund.Invoker(null!, CancellationToken.None);

            args.Remove("confirmation_token");
            Assert.Equal(Oracle(args), refusal is null);
            Assert.Equal(before + (refusal is null ? 1 : 0), _invocations);
            if (refusal is not null)
            {
                Assert.Equal(RefusalCodes.InvalidArguments, refusal.Code);
                Assert.NotEmpty(refusal.Extra!["violations"].EnumerateArray());
            }
        }, iter: 1000, threads: 1);
    }

    [Theory]
    [InlineData("cust_DEMO00000001", 1250, "duplicate", true)]
    [InlineData("cust_DEMO00000001\n", 1250, "duplicate", false)]
    [InlineData("cust_DEMO0000000\uFF11", 1250, "duplicate", false)]
    [InlineData("cust_DEMO00000001", 0, "duplicate", false)]
    [InlineData("cust_DEMO00000001", 1000001, "duplicate", false)]
    [InlineData("cust_DEMO00000001", 1000000, "fraud\u200b", false)]
    public void Edge_cases_of_the_refund_rules(string customer, long amount, string reason, bool valid)
    {
        var args = new JsonObject { ["customer_id"] = Regex.Unescape(customer), ["amount_cents"] = amount, ["reason"] = Regex.Unescape(reason) };
        Assert.Equal(valid, Oracle(args));
        Assert.Equal(valid, _refund.InputSchema!.Validate(JsonSerializer.SerializeToElement(args)).Count == 0);
    }

    [Fact]
    public void Deep_nesting_and_huge_values_are_refused_not_crashed()
    {
        var schema = _refund.InputSchema!;
        var deep = "\"x\"";
        for (var i = 0; i < 60; i++) deep = "[" + deep + "]";
        using var nested = JsonDocument.Parse($$"""{"customer_id":{{deep}},"amount_cents":1,"reason":"fraud"}""");
        Assert.NotEmpty(schema.Validate(nested.RootElement));

        using var huge = JsonDocument.Parse($$"""{"customer_id":"{{new string('A', 1_000_000)}}","amount_cents":1e308,"reason":"fraud"}""");
        var violations = schema.Validate(huge.RootElement);
        Assert.Contains(violations, v => v.Pointer == "/customer_id");
        Assert.Contains(violations, v => v.Pointer == "/amount_cents");
    }

    public void Dispose()
    {
        _database.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
