using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;

namespace ControlPlane.Audit.Storage;

/// <summary>
/// The position of the last row of a page in the newest-first order: (ts, tenant, seq). Opaque to callers
/// (base64url). It carries no authority: the query's own filters, tenants included, still apply to the next page.
/// </summary>
internal readonly record struct AuditCursor(long TimestampMicros, string TenantId, long Sequence)
{
    private const byte Version = 1;

    // The range a DateTimeOffset can hold, so a forged cursor cannot make the store overflow converting it back.
    private static readonly long MinMicros = AuditRows.ToUnixMicros(DateTimeOffset.MinValue);
    private static readonly long MaxMicros = AuditRows.ToUnixMicros(DateTimeOffset.MaxValue);

    public string Encode()
    {
        var tenant = Encoding.UTF8.GetBytes(TenantId);
        var bytes = new byte[17 + tenant.Length];
        bytes[0] = Version;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(1), TimestampMicros);
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(9), Sequence);
        tenant.CopyTo(bytes.AsSpan(17));
        return Base64Url.EncodeToString(bytes);
    }

    /// <exception cref="ArgumentException">The text is not a cursor this store issued.</exception>
    public static AuditCursor Decode(string cursor)
    {
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(cursor);
        }
        catch (FormatException)
        {
            throw Invalid();
        }

        if (bytes.Length < 18 || bytes[0] != Version)
        {
            throw Invalid();
        }

        var micros = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(1));
        if (micros < MinMicros || micros > MaxMicros)
        {
            throw Invalid();
        }

        string tenant;
        try
        {
            tenant = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 17, bytes.Length - 17);
        }
        catch (DecoderFallbackException)
        {
            throw Invalid();
        }

        return new AuditCursor(micros, tenant, BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(9)));
    }

    private static ArgumentException Invalid() => new("The audit cursor is not valid; pass back the NextCursor of a previous page.", "query");
}
