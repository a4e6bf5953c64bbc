using System.Globalization;
using System.Text;

namespace ControlPlane.Audit.Redaction;

/// <summary>
/// Per-tool JSON pointer rules: the value at each pointer is replaced by <c>[REDACTED]</c> whatever it holds.
/// </summary>
/// <remarks>
/// <para>Keys are <c>serverId/toolName</c>, matched exactly (ordinal). Pointers are RFC 6901: <c>""</c> is the whole
/// value, <c>/a/0/b</c> walks property <c>a</c>, item 0, property <c>b</c>; <c>~1</c> stands for <c>/</c> and
/// <c>~0</c> for <c>~</c> inside a segment. A numeric segment matches that array index (no leading zeros) as well
/// as a property with that name.</para>
/// <para>Extension: a segment that is exactly <c>*</c> matches any one property or array item, so
/// <c>/items/*/card</c> covers every item. A property literally named <c>*</c> is therefore covered by it too and
/// cannot be targeted alone.</para>
/// <para>Rules are compiled once into a small deterministic automaton, so a call pays one dictionary lookup per
/// level it descends into, and nothing at all for tools without rules.</para>
/// </remarks>
public sealed class RedactionRules
{
    public static RedactionRules Empty { get; } = new(new Dictionary<string, IReadOnlyList<string>>());

    private readonly Dictionary<string, PointerState> _byTool;

    /// <exception cref="ArgumentException">A pointer is not a valid RFC 6901 pointer (bad escape, no leading <c>/</c>).</exception>
    public RedactionRules(IReadOnlyDictionary<string, IReadOnlyList<string>> pointers)
    {
        ArgumentNullException.ThrowIfNull(pointers);
        _byTool = new Dictionary<string, PointerState>(StringComparer.Ordinal);
        foreach (var (tool, list) in pointers)
        {
            if (list is null || list.Count == 0) continue;
            var root = new TrieNode();
            foreach (var pointer in list)
            {
                var node = root;
                foreach (var segment in Parse(pointer)) node = node.Child(segment);
                node.Terminal = true;
            }

            _byTool[tool] = PointerState.Compile(root);
        }
    }

    public static RedactionRules FromOptions(RedactionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pointers = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (tool, list) in options.Pointers) pointers[tool] = list;
        return new RedactionRules(pointers);
    }

    /// <summary>Whether any pointer is configured for <paramref name="toolKey"/>.</summary>
    public bool HasRules(string? toolKey) => toolKey is not null && _byTool.ContainsKey(toolKey);

    /// <summary>The automaton's start state for a tool, or null when it has no rules.</summary>
    internal PointerState? Start(string? toolKey) =>
        toolKey is not null && _byTool.TryGetValue(toolKey, out var state) ? state : null;

    /// <summary>The unescaped segments of an RFC 6901 pointer. RFC 6901 has no escape that yields <c>*</c>, so a
    /// segment equal to <c>*</c> is always the wildcard.</summary>
    internal static List<string> Parse(string pointer)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        var segments = new List<string>();
        if (pointer.Length == 0) return segments;
        if (pointer[0] != '/') throw new ArgumentException($"JSON pointer '{pointer}' must be empty or start with '/'.", nameof(pointer));

        var segment = new StringBuilder();
        for (var i = 1; i <= pointer.Length; i++)
        {
            if (i == pointer.Length || pointer[i] == '/')
            {
                segments.Add(segment.ToString());
                segment.Clear();
                continue;
            }

            if (pointer[i] != '~')
            {
                segment.Append(pointer[i]);
                continue;
            }

            if (i + 1 < pointer.Length && pointer[i + 1] is '0' or '1')
            {
                segment.Append(pointer[i + 1] == '0' ? '~' : '/');
                i++;
                continue;
            }

            throw new ArgumentException($"JSON pointer '{pointer}' has '~' not followed by 0 or 1.", nameof(pointer));
        }

        return segments;
    }

    internal sealed class TrieNode
    {
        private static int s_ids;

        public int Id { get; } = Interlocked.Increment(ref s_ids);
        public Dictionary<string, TrieNode> Named { get; } = new(StringComparer.Ordinal);
        public TrieNode? Any { get; private set; }
        public bool Terminal { get; set; }

        public TrieNode Child(string segment)
        {
            if (segment == "*") return Any ??= new TrieNode();
            if (!Named.TryGetValue(segment, out var child)) Named[segment] = child = new TrieNode();
            return child;
        }
    }

    /// <summary>
    /// One state of the automaton: a set of pointer-trie nodes reached by the path so far. A wildcard and a
    /// literal can both match a step, so a step can lead to several nodes; compiling the sets up front (subset
    /// construction over an acyclic trie, so it terminates) leaves one state to carry at run time.
    /// </summary>
    internal sealed class PointerState
    {
        private Dictionary<string, PointerState>? _named;
        private Dictionary<string, PointerState>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        /// <summary>The value at this path is to be replaced.</summary>
        public bool Redact { get; private set; }

        /// <summary>The state after any step not named in <see cref="_named"/>: the wildcard continuations.</summary>
        private PointerState? _any;

        public PointerState? Next(ReadOnlySpan<char> propertyName) =>
            _named is not null && _lookup.TryGetValue(propertyName, out var state) ? state : _any;

        public PointerState? Next(int index)
        {
            if (_named is null) return _any;
            Span<char> digits = stackalloc char[11];
            return index.TryFormat(digits, out var written, default, CultureInfo.InvariantCulture) ? Next(digits[..written]) : _any;
        }

        internal static PointerState Compile(TrieNode root) => Build([root], new Dictionary<string, PointerState>(StringComparer.Ordinal));

        private static PointerState Build(List<TrieNode> nodes, Dictionary<string, PointerState> memo)
        {
            nodes.Sort((a, b) => a.Id.CompareTo(b.Id));
            var key = string.Join(',', nodes.Select(n => n.Id));
            if (memo.TryGetValue(key, out var existing)) return existing;

            var state = new PointerState();
            memo[key] = state;
            var wildcards = new List<TrieNode>();
            foreach (var node in nodes)
            {
                state.Redact |= node.Terminal;
                if (node.Any is not null && !wildcards.Contains(node.Any)) wildcards.Add(node.Any);
            }

            var names = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var node in nodes) names.UnionWith(node.Named.Keys);
            if (names.Count > 0)
            {
                state._named = new Dictionary<string, PointerState>(StringComparer.Ordinal);
                foreach (var name in names)
                {
                    var targets = new List<TrieNode>(wildcards);
                    foreach (var node in nodes)
                    {
                        if (node.Named.TryGetValue(name, out var child) && !targets.Contains(child)) targets.Add(child);
                    }

                    state._named[name] = Build(targets, memo);
                }

                state._lookup = state._named.GetAlternateLookup<ReadOnlySpan<char>>();
            }

            if (wildcards.Count > 0) state._any = Build(wildcards, memo);
            return state;
        }
    }
}
