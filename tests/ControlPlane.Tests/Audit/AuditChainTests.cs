using ControlPlane.Audit.Model;

namespace ControlPlane.Tests.Audit;

/// <summary>
/// The chain hash is a stored format: records written by an earlier build must still verify. These values were
/// computed by the first implementation (a fresh Utf8JsonWriter per record); a change to them breaks every stored chain.
/// </summary>
public sealed class AuditChainTests
{
    private static readonly AuditEntry Golden = new()
    {
        Id = "call-0001",
        Timestamp = new DateTimeOffset(2025, 3, 1, 14, 0, 0, TimeSpan.FromHours(2)).AddTicks(1_234_567),
        TenantId = "acme",
        AgentId = "support-agent",
        UserId = "user-7",
        SessionId = "s-1",
        TokenId = "tok_1",
        Kind = "tools/call",
        Server = "support-desk",
        Tool = "create_refund",
        // Escaping (quotes, HTML-sensitive characters), non-ASCII and a surrogate pair all feed the hash.
        Arguments = """{"amount":12.5,"note":"Grüße <b>&</b> \"quoted\" 😀"}""",
        ArgumentsHash = "ab12",
        Decision = "allowed",
        Outcome = "success",
        ResultHash = "cd34",
        ResultSize = 1834,
        LatencyMs = 4.25,
        ConfirmationId = "appr_9",
        Silo = "silo-1",
    };

    [Fact]
    public void The_hash_of_a_record_is_the_one_earlier_builds_stored()
    {
        Assert.Equal("d46a90790173630ef7bd114c8ca1bf5a61aec9bdb028fefd6e952759b3e92442", AuditChain.ComputeHash(Golden, 42, AuditChain.Genesis));
        Assert.Equal("91ff73b5c9a4aa9b818c355b7bd4aa4d70ec4a3d971d1cb15c2244af50fa08a7",
            AuditChain.ComputeHash(Golden with { ResultSize = null, LatencyMs = null, AgentId = null }, 1, new string('a', 64)));
    }

    [Fact]
    public void A_large_record_between_small_ones_leaves_no_trace_in_their_hashes()
    {
        // The hash reuses a per-thread buffer: a record far larger than the buffer it keeps must not change the next one.
        var before = AuditChain.ComputeHash(Golden, 42, AuditChain.Genesis);
        var large = AuditChain.ComputeHash(Golden with { Arguments = new string('x', 300_000) }, 43, before);
        Assert.NotEqual(before, large);
        Assert.Equal(before, AuditChain.ComputeHash(Golden, 42, AuditChain.Genesis));
    }
}
