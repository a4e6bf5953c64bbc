using System.Buffers;
using System.Text.RegularExpressions;

namespace ControlPlane.Audit.Redaction;

/// <summary>What a redaction replaced, and the text that stands in for it.</summary>
internal enum RedactionKind : byte
{
    Email,
    Phone,
    Card,
    Token,
    Secret,
    Pointer,
    TooDeep,
    Timeout,
}

internal readonly record struct Hit(int Start, int End, RedactionKind Kind);

/// <summary>A growable list of hits backed by the array pool; nothing is rented until the first hit.</summary>
internal struct HitList : IDisposable
{
    private Hit[]? _items;

    public int Count { get; private set; }

    public readonly ReadOnlySpan<Hit> Items => _items is null ? [] : _items.AsSpan(0, Count);

    public void Add(int start, int end, RedactionKind kind)
    {
        if (_items is null) _items = ArrayPool<Hit>.Shared.Rent(8);
        else if (Count == _items.Length)
        {
            var larger = ArrayPool<Hit>.Shared.Rent(Count * 2);
            _items.AsSpan().CopyTo(larger);
            ArrayPool<Hit>.Shared.Return(_items);
            _items = larger;
        }

        _items[Count++] = new Hit(start, end, kind);
    }

    /// <summary>Sorts by start and merges overlapping hits (the earlier, then longer, hit names the merged one).</summary>
    public void Normalize()
    {
        if (Count < 2 || _items is null) return;
        var span = _items.AsSpan(0, Count);
        span.Sort(default(ByStart));
        var kept = 0;
        for (var i = 1; i < span.Length; i++)
        {
            if (span[i].Start < span[kept].End)
            {
                if (span[i].End > span[kept].End) span[kept] = span[kept] with { End = span[i].End };
            }
            else
            {
                span[++kept] = span[i];
            }
        }

        Count = kept + 1;
    }

    public void Dispose()
    {
        if (_items is not null) ArrayPool<Hit>.Shared.Return(_items);
        _items = null;
        Count = 0;
    }

    private readonly struct ByStart : IComparer<Hit>
    {
        public int Compare(Hit x, Hit y) => x.Start != y.Start ? x.Start.CompareTo(y.Start) : y.End.CompareTo(x.End);
    }
}

/// <summary>
/// Finds secrets and personal data in text. Two cheap checks decide whether the expensive part runs at all:
/// the regular expression only runs when the text holds an <c>@</c> or one of the token prefixes, and the
/// number scanner only when it holds at least eight digits. Most tool arguments (ids, enums, amounts, dates)
/// pass both checks without a match attempt.
/// </summary>
/// <remarks>
/// The pattern runs with <see cref="RegexOptions.NonBacktracking"/>, so matching is linear in the input whatever
/// it contains, and with a timeout as a second line of defence. Phone and card numbers are found by a hand-written
/// scanner rather than a pattern: telling them from dates, versions, ids and amounts needs digit counts, group
/// shapes and the Luhn checksum, which are code anyway.
/// </remarks>
internal static partial class SensitiveText
{
    private const int MinPhoneDigits = 8;
    private const int MaxPhoneDigits = 15;
    private const int MinCardDigits = 13;
    private const int MaxCardDigits = 19;

    public static string Replacement(RedactionKind kind) => kind switch
    {
        RedactionKind.Email => "[REDACTED:email]",
        RedactionKind.Phone => "[REDACTED:phone]",
        RedactionKind.Card => "[REDACTED:card]",
        RedactionKind.Token => "[REDACTED:token]",
        RedactionKind.Secret => "[REDACTED:secret]",
        RedactionKind.TooDeep => "[REDACTED:too-deep]",
        RedactionKind.Timeout => "[REDACTED:timeout]",
        _ => "[REDACTED]",
    };

    // Every token alternative of the pattern starts with one of these (case-sensitive); the regex is not run
    // on text that holds none of them and no '@'.
    private static readonly SearchValues<string> TokenPrefixes = SearchValues.Create(
        [
            "Bearer", "bearer", "BEARER", "eyJ", "sk-", "sk_", "rk_", "pk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
            "github_pat_", "xox", "AKIA", "ASIA", "cpt_", "cpo_", "cpc_", "-----BEGIN",
        ],
        StringComparison.Ordinal);

    /// <summary>
    /// Secret shapes: bearer credentials, JWTs, API keys by their published prefixes (OpenAI/Anthropic <c>sk-</c>,
    /// Stripe, GitHub, Slack, AWS access key ids), ControlPlane's own <c>cpt_/cpo_/cpc_</c> tokens, and PEM private
    /// key blocks. Key tails need 20+ characters so that words like <c>sk-learn</c> are left alone. After "Bearer"
    /// (also an English word) a credential needs a digit or one of <c>_~+/-</c>, or a dot inside it, or 16+
    /// letters: "Bearer abc.def" is one, "Bearer bonds." is prose. That test is in the pattern, not in code after
    /// it, because a rejected match would hide any match that starts inside it ("Bearer ada@example.com").
    /// </summary>
    private const string SecretShapes =
        """
        \b(?:Bearer|bearer|BEARER)[\x20\t]+(?:[A-Za-z0-9._~+/-]*(?:[0-9_~+/-]|\.[A-Za-z0-9_~+/-])[A-Za-z0-9._~+/-]*|[A-Za-z]{16,})=*
        |\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*
        |\b(?:sk-|sk_live_|sk_test_|rk_live_|rk_test_|pk_live_|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|xox[abposr]-)[A-Za-z0-9_-]{20,}
        |\bcp[toc]_(?:[A-Za-z0-9.:/-]*_)?[A-Za-z0-9_-]{20,}
        |\b(?:AKIA|ASIA)[0-9A-Z]{16}\b
        |-----BEGIN[A-Z\x20]{0,20}PRIVATE\x20KEY-----[A-Za-z0-9+/=\s]*(?:-----END[A-Z\x20]{0,20}PRIVATE\x20KEY-----)?
        """;

    /// <summary>An e-mail address. The last label must start with a letter, so <c>lodash@4.17.21</c> is not one.</summary>
    private const string Email = """[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.\p{L}[\w-]*""";

    private const RegexOptions PatternOptions =
        RegexOptions.NonBacktracking | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture | RegexOptions.IgnorePatternWhitespace;

    [GeneratedRegex(Email + "|" + SecretShapes, PatternOptions, matchTimeoutMilliseconds: 1000)]
    private static partial Regex EmailsAndSecrets();

    // Without PII detection the e-mail alternative must go, not just its matches: a dropped e-mail match would
    // hide a key that starts inside it ("sk-…@example.com").
    [GeneratedRegex(SecretShapes, PatternOptions, matchTimeoutMilliseconds: 1000)]
    private static partial Regex Secrets();

    /// <summary>Whether any detector could match: the fast path for the common clean string.</summary>
    public static bool MightContain(ReadOnlySpan<char> text, bool pii) =>
        text.IndexOfAny(TokenPrefixes) >= 0 || (pii && (text.Contains('@') || HasDigits(text, MinPhoneDigits)));

    /// <summary>
    /// Adds every sensitive span of <paramref name="text"/> to <paramref name="hits"/>, sorted and merged.
    /// Returns false when the pattern timed out; the caller should then withhold the whole text.
    /// </summary>
    public static bool Find(ReadOnlySpan<char> text, bool pii, ref HitList hits)
    {
        if (text.IndexOfAny(TokenPrefixes) >= 0 || (pii && text.Contains('@')))
        {
            try
            {
                foreach (var match in (pii ? EmailsAndSecrets() : Secrets()).EnumerateMatches(text))
                {
                    // Only the e-mail alternative can match an '@'.
                    var kind = text.Slice(match.Index, match.Length).Contains('@') ? RedactionKind.Email : RedactionKind.Token;
                    hits.Add(match.Index, match.Index + match.Length, kind);
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return false;
            }
        }

        if (pii && HasDigits(text, MinPhoneDigits)) FindNumbers(text, ref hits);
        hits.Normalize();
        return true;
    }

    /// <summary>
    /// A JSON number that is a payment card: 13–19 plain digits that pass <see cref="IsCard"/>. Numbers are only
    /// checked for cards; as numbers, phone-like values are far more often ids and amounts.
    /// </summary>
    public static bool IsCardNumber(ReadOnlySpan<byte> token)
    {
        if (token.Length is < MinCardDigits or > MaxCardDigits) return false;
        Span<char> digits = stackalloc char[MaxCardDigits];
        for (var i = 0; i < token.Length; i++)
        {
            if (!char.IsAsciiDigit((char)token[i])) return false;
            digits[i] = (char)token[i];
        }

        return IsCard(digits[..token.Length]);
    }

    /// <summary>
    /// Luhn-valid digits with a major-network leading digit: 3 (Amex, Diners, JCB), 4 (Visa), 5 (Mastercard),
    /// 6 (Discover, UnionPay, Maestro) or 2221–2720 (Mastercard). The range check drops 13–19 digit timestamps
    /// such as <c>20261125103000</c>, a tenth of which would pass Luhn.
    /// </summary>
    private static bool IsCard(ReadOnlySpan<char> digits)
    {
        if (digits.Length is < MinCardDigits or > MaxCardDigits || !HasCardPrefix(digits)) return false;
        var luhn = default(Luhn);
        foreach (var c in digits) luhn.Append(c - '0');
        return luhn.Valid;
    }

    private static bool HasCardPrefix(ReadOnlySpan<char> digits) => digits[0] switch
    {
        '2' => (digits[1] - '0') * 100 + (digits[2] - '0') * 10 + (digits[3] - '0') is >= 221 and <= 720,
        >= '3' and <= '6' => true,
        _ => false,
    };

    /// <summary>
    /// The Luhn checksum of a digit string that grows to the right. Which digits are doubled depends on the final
    /// length, so both parities are summed as digits arrive and the right one is picked at the end: checking
    /// every window of a long run then costs one step per digit.
    /// </summary>
    private struct Luhn
    {
        private int _evenDoubled;
        private int _oddDoubled;

        public int Length { get; private set; }

        public void Append(int digit)
        {
            var doubled = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
            if (Length % 2 == 0)
            {
                _evenDoubled += doubled;
                _oddDoubled += digit;
            }
            else
            {
                _evenDoubled += digit;
                _oddDoubled += doubled;
            }

            Length++;
        }

        /// <summary>The rightmost digit is never doubled, so digits at odd distances from it are.</summary>
        public readonly bool Valid => (Length % 2 == 0 ? _evenDoubled : _oddDoubled) % 10 == 0;
    }

    private static bool HasDigits(ReadOnlySpan<char> text, int atLeast)
    {
        var seen = 0;
        while (true)
        {
            var next = text.IndexOfAnyInRange('0', '9');
            if (next < 0) return false;
            if (++seen >= atLeast) return true;
            text = text[(next + 1)..];
        }
    }

    /// <summary>A run of digits; <see cref="First"/> marks the start of a cluster (groups joined by separators).</summary>
    private readonly record struct Group(int Start, int End, bool First)
    {
        public int Length => End - Start;
    }

    /// <summary>
    /// Splits the text into digit groups, joins groups separated by up to three of <c>space - . / ( )</c> (at
    /// most one of them not a bracket) into clusters, and looks for cards and phone numbers inside each cluster,
    /// cards first. A cluster can hold more than one number ("4111 1111 1111 1111 12/27"), so candidates are
    /// windows of consecutive groups, the longest that qualifies winning.
    /// </summary>
    private static void FindNumbers(ReadOnlySpan<char> text, ref HitList hits)
    {
        Group[]? rented = null;
        var groups = (Span<Group>)stackalloc Group[32];
        var count = 0;
        try
        {
            var position = 0;
            while (position < text.Length)
            {
                var offset = text[position..].IndexOfAnyInRange('0', '9');
                if (offset < 0) break;
                var start = position + offset;
                var end = start + 1;
                while (end < text.Length && char.IsAsciiDigit(text[end])) end++;

                if (count == groups.Length)
                {
                    var larger = ArrayPool<Group>.Shared.Rent(count * 2);
                    groups.CopyTo(larger);
                    if (rented is not null) ArrayPool<Group>.Shared.Return(rented);
                    groups = rented = larger;
                }

                groups[count] = new Group(start, end, count == 0 || !IsJoiner(text[groups[count - 1].End..start]));
                count++;
                position = end;
            }

            var all = groups[..count];
            var clusterStart = 0;
            for (var i = 1; i <= count; i++)
            {
                if (i < count && !all[i].First) continue;
                ScanCluster(text, all[clusterStart..i], ref hits);
                clusterStart = i;
            }
        }
        finally
        {
            if (rented is not null) ArrayPool<Group>.Shared.Return(rented);
        }
    }

    private static bool IsJoiner(ReadOnlySpan<char> separator)
    {
        if (separator.Length is 0 or > 3) return false;
        var plain = 0;
        foreach (var c in separator)
        {
            if (c is '(' or ')') continue;
            if (c is not (' ' or '-' or '.' or '/')) return false;
            plain++;
        }

        return plain <= 1;
    }

    private static void ScanCluster(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster, ref HitList hits)
    {
        var total = 0;
        foreach (var g in cluster) total += g.Length;
        if (total < MinPhoneDigits) return;

        // Cards first, over the whole cluster, so a phone window cannot swallow half a card; then phones in
        // the gaps between cards.
        var gapStart = 0;
        var k = 0;
        while (k <= cluster.Length)
        {
            var end = k < cluster.Length ? CardWindow(text, cluster, k) : k;
            if (end == k && k < cluster.Length)
            {
                k++;
                continue;
            }

            // A number printed like a card ("4111 1111 1111 1112") that failed the checksum is not a phone either.
            if (gapStart != 0 || k != cluster.Length || !IsCardLayout(text, cluster)) FindPhones(text, cluster, gapStart, k, ref hits);
            if (k == cluster.Length) break;
            hits.Add(cluster[k].Start, cluster[end - 1].End, RedactionKind.Card);
            gapStart = k = end;
        }
    }

    private static void FindPhones(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster, int from, int to, ref HitList hits)
    {
        var k = from;
        if (k == 0 && k < to)
        {
            // Only a cluster's first group can have a '+' in front, and only such a number may end early.
            var end = PhoneWindow(text, cluster, 0, to, out var start);
            if (end > 0) hits.Add(start, cluster[end - 1].End, RedactionKind.Phone);
            k = end > 0 ? end : 1;
        }

        // Any other phone number runs to the end of the gap, so only starts within its last 15 digits can
        // qualify; looking only there keeps long runs of short groups ("1 1 1 1 …") linear.
        var first = to;
        var digits = 0;
        while (first > k && digits + cluster[first - 1].Length <= MaxPhoneDigits) digits += cluster[--first].Length;
        for (; first < to; first++)
        {
            var end = PhoneWindow(text, cluster, first, to, out var start);
            if (end > first)
            {
                hits.Add(start, cluster[end - 1].End, RedactionKind.Phone);
                return;
            }
        }
    }

    /// <summary>
    /// The end (exclusive group index) of the longest card starting at group <paramref name="k"/>, or
    /// <paramref name="k"/>. A card is one run of digits or groups joined by one kind of single separator
    /// (space or dash) with a four-digit first group, as cards are printed.
    /// </summary>
    private static int CardWindow(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster, int k)
    {
        // A card is one 13–19 digit run or starts with a group of four.
        var first = cluster[k].Length;
        if (first != 4 && first is < MinCardDigits or > MaxCardDigits) return k;

        // "+4915112345678" passes Luhn, but a leading '+' makes it a phone number.
        if (k == 0 && cluster[0].Start > 0 && text[cluster[0].Start - 1] == '+') return k;

        if (!HasCardPrefix(text.Slice(cluster[k].Start, 4))) return k;
        var luhn = default(Luhn);
        var separator = '\0';
        var best = k;
        for (var j = k; j < cluster.Length; j++)
        {
            if (j > k)
            {
                // One separator character between groups, the same one throughout.
                var between = text[cluster[j - 1].End];
                if (first != 4 || cluster[j].Start - cluster[j - 1].End != 1 || between is not (' ' or '-')) break;
                if (separator == '\0') separator = between;
                else if (separator != between) break;
            }

            if (luhn.Length + cluster[j].Length > MaxCardDigits) break;
            for (var i = cluster[j].Start; i < cluster[j].End; i++) luhn.Append(text[i] - '0');
            if (luhn.Length >= MinCardDigits && luhn.Valid) best = j + 1;
        }

        return best;
    }

    /// <summary>
    /// 13–19 digits laid out as cards are printed: one run, or 4-4-4-4(-3), 4-6-5 or 4-6-4 with one kind of single
    /// space or dash, and no '+' in front.
    /// </summary>
    private static bool IsCardLayout(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster)
    {
        var digits = 0;
        foreach (var g in cluster) digits += g.Length;
        if (digits is < MinCardDigits or > MaxCardDigits) return false;
        if (cluster[0].Start > 0 && text[cluster[0].Start - 1] == '+') return false;
        if (cluster.Length == 1) return true;
        if (cluster[0].Length != 4 || cluster[^1].Length > 6) return false;
        var separator = text[cluster[0].End];
        for (var i = 1; i < cluster.Length; i++)
        {
            if (i < cluster.Length - 1 && cluster[i].Length is not (4 or 6)) return false;
            var between = text[cluster[i - 1].End..cluster[i].Start];
            if (between.Length != 1 || between[0] != separator || separator is not (' ' or '-')) return false;
        }

        return true;
    }

    /// <summary>
    /// The end (exclusive group index) of the longest phone number starting at group <paramref name="k"/>, or
    /// <paramref name="k"/>, ending before group <paramref name="limit"/>; <paramref name="start"/> includes a leading
    /// <c>+</c> or <c>(</c>.
    /// </summary>
    private static int PhoneWindow(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster, int k, int limit, out int start)
    {
        start = cluster[k].Start;
        var before = start > 0 ? text[start - 1] : '\0';
        var plus = false;
        var bracket = false;
        if (k == 0)
        {
            plus = before == '+';
            bracket = before == '(';
            if (plus || bracket) start--;
            if (IsAttachedBefore(text, start)) return k;
        }
        else if (!text[cluster[k - 1].End..cluster[k].Start].Contains(' '))
        {
            // Mid-cluster numbers start only after a space: "11-25 07700 900123" is not a phone at "11".
            return k;
        }

        var digits = 0;
        var last = k - 1;
        while (last + 1 < limit && digits + cluster[last + 1].Length <= MaxPhoneDigits) digits += cluster[++last].Length;

        // Without a '+' the number must run to the end of its digits: a phone number does not stop halfway
        // through evenly spaced groups ("4111 1111 1111 1112", "12345678-1234-…").
        if (!plus)
        {
            return last == limit - 1 && digits >= MinPhoneDigits && EndsCleanly(text, cluster, last)
                && IsPhoneShape(text, cluster[k..limit], bracket) ? limit : k;
        }

        for (var j = last; j >= k && digits >= MinPhoneDigits; j--)
        {
            if (EndsCleanly(text, cluster, j)) return j + 1;
            digits -= cluster[j].Length;
        }

        return k;
    }

    /// <summary>Letters, digits or '_' right before, directly or through one of <c>-./</c>: part of an id such as a UUID.</summary>
    private static bool IsAttachedBefore(ReadOnlySpan<char> text, int start)
    {
        if (start == 0) return false;
        var c = text[start - 1];
        if (IsWordChar(c)) return true;
        return c is '-' or '.' or '/' && start >= 2 && IsWordChar(text[start - 2]);
    }

    private static bool EndsCleanly(ReadOnlySpan<char> text, ReadOnlySpan<Group> cluster, int j)
    {
        if (j + 1 < cluster.Length) return text[cluster[j].End..cluster[j + 1].Start].Contains(' ');
        var end = cluster[j].End;
        if (end >= text.Length) return true;
        var c = text[end];
        if (IsWordChar(c)) return false;
        return !(c is '-' or '.' or '/' && end + 1 < text.Length && IsWordChar(text[end + 1]));
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    /// <summary>
    /// Whether digit groups without a leading <c>+</c> (which is decisive on its own) look like a phone number
    /// rather than a date, version, address, amount, id or range. One run needs a trunk prefix (<c>0…</c>
    /// national, <c>00…</c> international) and 10+ digits. Groups need a first group of at most 5 digits (or in
    /// brackets) and every later group 2+ digits; without a leading 0 or bracket also 3+ groups and one of 3+
    /// digits; and they must not be shaped like a date, an IPv4 address, a decimal or thousands separators.
    /// </summary>
    private static bool IsPhoneShape(ReadOnlySpan<char> text, ReadOnlySpan<Group> groups, bool bracket)
    {
        var first = text[groups[0].Start..groups[0].End];
        var trunk = first[0] == '0';

        if (groups.Length == 1)
        {
            return trunk && first.Length >= 10 && (first[1] != '0' || first[2] != '0');
        }

        if (!bracket && first.Length > 5) return false;
        for (var i = 1; i < groups.Length; i++)
        {
            if (groups[i].Length < 2) return false;
        }

        // Without a trunk prefix or brackets, two groups are more often a range (2024-2025) and runs of short
        // groups a list (10 20 30 40) than a phone number.
        if (!trunk && !bracket && (groups.Length == 2 || MaxLength(groups) < 3)) return false;

        // The separators that are not spaces or brackets, and whether they are all the same.
        var mark = '\0';
        var mixed = false;
        var allDots = true;
        for (var i = 1; i < groups.Length; i++)
        {
            var between = text[groups[i - 1].End..groups[i].Start];
            if (between.Contains('/') && !trunk) return false;
            allDots &= between is ".";
            foreach (var c in between)
            {
                if (c is ' ' or '(' or ')') continue;
                if (mark == '\0') mark = c;
                else if (mark != c) mixed = true;
            }
        }

        // 2026-11-25, 25.11.2026, 11/25/2026 (optionally followed by a time).
        if (groups.Length >= 3 && mark != '\0')
        {
            int a = groups[0].Length, b = groups[1].Length, c = groups[2].Length;
            var firstTwo = text[groups[0].End..groups[1].Start];
            var nextTwo = text[groups[1].End..groups[2].Start];
            var dateLike = (a == 4 && b <= 2 && c <= 2) || (a <= 2 && b <= 2 && c == 4);
            if (dateLike && firstTwo.Length == 1 && firstTwo.SequenceEqual(nextTwo) && firstTwo[0] is '-' or '.' or '/') return false;
        }

        // 192.168.100.200 and 12500000.00.
        if (allDots && (groups.Length == 2 || (groups.Length == 4 && MaxLength(groups) <= 3))) return false;

        // 12 500 000 and 12.500.000: thousands separators.
        if (!trunk && !mixed && first.Length <= 3 && mark is '\0' or '.')
        {
            var thousands = true;
            for (var i = 1; i < groups.Length; i++) thousands &= groups[i].Length == 3;
            if (thousands) return false;
        }

        return true;
    }

    private static int MaxLength(ReadOnlySpan<Group> groups)
    {
        var max = 0;
        foreach (var g in groups) max = Math.Max(max, g.Length);
        return max;
    }
}
