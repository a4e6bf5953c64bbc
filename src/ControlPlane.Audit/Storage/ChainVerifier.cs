using ControlPlane.Audit.Model;

namespace ControlPlane.Audit.Storage;

/// <summary>A stored chain position: a tenant's head, or the anchor that purge leaves behind.</summary>
internal readonly record struct ChainLink(long Sequence, string Hash);

/// <summary>
/// Walks one tenant's records in sequence order and reports the first that does not fit. Shared by both stores
/// so they judge a chain identically; the stores only feed it rows read inside one snapshot.
/// </summary>
/// <remarks>
/// <see cref="ChainVerification.Checked"/> counts the records that verified before the first problem (all of
/// them when the chain is intact).
/// </remarks>
internal sealed class ChainVerifier
{
    private readonly ChainLink? _anchor;
    private long _expectedSequence;
    private string _expectedPrevious;
    private long _checked;
    private ChainVerification? _broken;

    public ChainVerifier(ChainLink? anchor)
    {
        _anchor = anchor;
        _expectedSequence = anchor is { } a ? a.Sequence + 1 : 1;
        _expectedPrevious = anchor is { } b ? b.Hash : AuditChain.Genesis;
    }

    /// <summary>Checks the next record; false once the chain is broken (the caller can stop reading).</summary>
    public bool Check(AuditRecord record)
    {
        if (_broken is not null)
        {
            return false;
        }

        var sequence = record.Sequence;
        if (sequence != _expectedSequence)
        {
            return Break(sequence, sequence > _expectedSequence
                ? MissingRange(_expectedSequence, sequence - 1)
                : $"Record {sequence} is at or before the retention anchor (record {_anchor?.Sequence}).");
        }

        if (!string.Equals(record.PreviousHash, _expectedPrevious, StringComparison.Ordinal))
        {
            return Break(sequence, sequence == 1 || _anchor?.Sequence == sequence - 1
                ? $"Record {sequence} does not link to the start of the chain (genesis or retention anchor)."
                : $"Record {sequence} does not link to record {sequence - 1}.");
        }

        if (!string.Equals(AuditChain.ComputeHash(record.Entry, sequence, record.PreviousHash), record.Hash, StringComparison.Ordinal))
        {
            return Break(sequence, $"Record {sequence} has been altered: its contents no longer match its hash.");
        }

        _expectedSequence = sequence + 1;
        _expectedPrevious = record.Hash;
        _checked++;
        return true;
    }

    /// <summary>Compares where the walk ended with the tenant's stored head.</summary>
    public ChainVerification Finish(ChainLink? head)
    {
        if (_broken is not null)
        {
            return _broken;
        }

        var last = _expectedSequence - 1;
        if (head is not { } h)
        {
            return _checked == 0 && _anchor is null
                ? new ChainVerification(true, 0, null, null)
                : new ChainVerification(false, _checked, Math.Max(last, 1), "The tenant has records or a retention anchor but no chain head.");
        }

        if (h.Sequence > last)
        {
            return new ChainVerification(false, _checked, last + 1, MissingRange(last + 1, h.Sequence) + $" The chain head is at record {h.Sequence}.");
        }

        if (h.Sequence < last)
        {
            return new ChainVerification(false, _checked, h.Sequence + 1, $"Records after the chain head (record {h.Sequence}) were not appended through the store.");
        }

        if (!string.Equals(h.Hash, _expectedPrevious, StringComparison.Ordinal))
        {
            // Sequence 0 is an empty chain; with nothing to blame, point at the first record that would follow.
            return new ChainVerification(false, _checked, Math.Max(last, 1), $"The chain head does not match record {last}.");
        }

        return new ChainVerification(true, _checked, null, null);
    }

    private bool Break(long sequence, string problem)
    {
        _broken = new ChainVerification(false, _checked, sequence, problem);
        return false;
    }

    private static string MissingRange(long first, long last) =>
        first == last ? $"Record {first} is missing." : $"Records {first} to {last} are missing.";
}
