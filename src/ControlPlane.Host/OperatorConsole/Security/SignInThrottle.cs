using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.OperatorConsole.Security;

/// <summary>
/// Counts failed console sign-ins per account and per client address over a sliding window, so password
/// guessing is slow whether it targets one account from many places or many accounts from one. Per silo:
/// an attacker spreading guesses over N silos gets N times the budget, still far too little to guess a
/// generated password.
/// </summary>
internal sealed class SignInThrottle(IOptions<ConsoleOptions> options, TimeProvider time)
{
    private const int MaxTracked = 100_000;
    private readonly ConcurrentDictionary<string, Failures> _failures = new(StringComparer.Ordinal);

    /// <summary>How long the caller must wait before trying again, or null if it may try now.</summary>
    public TimeSpan? RetryAfter(string account, string address)
    {
        var settings = options.Value;
        var now = time.GetUtcNow();
        var byAccount = Wait("account|" + account, settings.MaxFailedSignInsPerAccount, now);
        var byAddress = Wait("address|" + address, settings.MaxFailedSignInsPerAddress, now);
        return (byAccount, byAddress) switch
        {
            (null, null) => null,
            ({ } a, null) => a,
            (null, { } b) => b,
            ({ } a, { } b) => a > b ? a : b,
        };
    }

    public void Failed(string account, string address)
    {
        var now = time.GetUtcNow();
        if (_failures.Count > MaxTracked) Prune(now);
        Record("account|" + account, now);
        Record("address|" + address, now);
    }

    /// <summary>A right password clears the account's count (the address keeps its own).</summary>
    public void Succeeded(string account) => _failures.TryRemove("account|" + account, out _);

    private TimeSpan? Wait(string key, int allowed, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(key, out var failures)) return null;
        lock (failures)
        {
            failures.DropBefore(now - options.Value.SignInWindow);
            if (failures.Times.Count < allowed) return null;
            return failures.Times.Peek() + options.Value.SignInWindow - now;
        }
    }

    private void Record(string key, DateTimeOffset now)
    {
        var failures = _failures.GetOrAdd(key, static _ => new Failures());
        lock (failures)
        {
            failures.DropBefore(now - options.Value.SignInWindow);
            failures.Times.Enqueue(now);
        }
    }

    private void Prune(DateTimeOffset now)
    {
        foreach (var (key, failures) in _failures)
        {
            lock (failures)
            {
                failures.DropBefore(now - options.Value.SignInWindow);
                if (failures.Times.Count == 0) _failures.TryRemove(key, out _);
            }
        }
    }

    private sealed class Failures
    {
        public Queue<DateTimeOffset> Times { get; } = new();

        public void DropBefore(DateTimeOffset cutoff)
        {
            while (Times.Count > 0 && Times.Peek() < cutoff) Times.Dequeue();
        }
    }
}
