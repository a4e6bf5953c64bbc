namespace ControlPlane.Host.Operations;

/// <summary>Bad input: each entry names a field and what is wrong with it. Nothing was changed.</summary>
internal sealed class InvalidRequestException(IDictionary<string, string[]> errors)
    : Exception("The request is invalid: " + string.Join("; ", errors.SelectMany(e => e.Value.Select(m => $"{e.Key}: {m}"))))
{
    public IDictionary<string, string[]> Errors { get; } = errors;

    public static InvalidRequestException For(string field, string message) => new(new Dictionary<string, string[]> { [field] = [message] });
}

/// <summary>The thing named does not exist, or is not visible to this operator.</summary>
internal sealed class NotFoundException(string message) : Exception(message);

/// <summary>The request is valid but the thing is not in a state that allows it (an approval already decided).</summary>
internal sealed class ConflictException(string message) : Exception(message);

/// <summary>The operator may not do this: a role or a tenant it lacks.</summary>
internal sealed class ForbiddenException(string message) : Exception(message);

/// <summary>Collects field errors and throws them together, so a client can fix everything in one go.</summary>
internal sealed class RequestValidator
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public RequestValidator Check(bool ok, string field, string message)
    {
        if (!ok) Add(field, message);
        return this;
    }

    public void Add(string field, string message)
    {
        if (!_errors.TryGetValue(field, out var list)) _errors[field] = list = [];
        list.Add(message);
    }

    public void ThrowIfInvalid()
    {
        if (_errors.Count > 0) throw new InvalidRequestException(_errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));
    }
}
