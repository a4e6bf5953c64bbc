using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace ControlPlane.Audit.Model;

/// <summary>
/// The per-tenant hash chain: each record's hash covers every field of the record, its sequence and the
/// previous record's hash, so altering or removing a row breaks the chain at that point. Every store uses
/// this one definition.
/// </summary>
public static class AuditChain
{
    /// <summary>The previous hash of a tenant's first record.</summary>
    public static readonly string Genesis = new('0', 64);

    /// <summary>Timestamps are kept to whole microseconds, the precision every store round-trips exactly.</summary>
    public static DateTimeOffset Normalize(DateTimeOffset timestamp) =>
        new(timestamp.UtcTicks - timestamp.UtcTicks % 10, TimeSpan.Zero);

    public static string ComputeHash(AuditEntry entry, long sequence, string previousHash)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            // A fixed field order, not reflection: the hash must never change because a property moved.
            writer.WriteStartArray();
            writer.WriteNumberValue(sequence);
            writer.WriteStringValue(previousHash);
            writer.WriteStringValue(entry.Id);
            writer.WriteNumberValue(Normalize(entry.Timestamp).UtcTicks / 10);
            foreach (var value in new[]
            {
                entry.TenantId, entry.AgentId, entry.UserId, entry.SessionId, entry.TokenId, entry.Kind, entry.Server, entry.Tool,
                entry.Arguments, entry.ArgumentsHash, entry.Decision, entry.Code, entry.Outcome, entry.ErrorType, entry.ResultHash,
                entry.ConfirmationId, entry.Silo, entry.Detail,
            })
            {
                if (value is null) writer.WriteNullValue();
                else writer.WriteStringValue(value);
            }

            if (entry.ResultSize is { } size) writer.WriteNumberValue(size);
            else writer.WriteNullValue();
            if (entry.LatencyMs is { } latency) writer.WriteStringValue(latency.ToString("R", CultureInfo.InvariantCulture));
            else writer.WriteNullValue();
            writer.WriteEndArray();
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
    }
}
