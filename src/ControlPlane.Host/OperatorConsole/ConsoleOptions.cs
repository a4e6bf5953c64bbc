namespace ControlPlane.Host.OperatorConsole;

/// <summary>The operator console (<c>ControlPlane:Console</c>): sign-in, accounts and throttling.</summary>
internal sealed class ConsoleOptions
{
    public const string SectionName = "ControlPlane:Console";

    /// <summary>Serve the console at <c>/console</c> (on every silo).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Console accounts defined by the deployment, beside those in the operator directory. Each has a
    /// PBKDF2 <c>PasswordHash</c> (<c>pbkdf2-sha256$iterations$salt$hash</c>), roles and, optionally, tenants.
    /// </summary>
    public List<ConsoleOperatorOptions> Operators { get; set; } = [];

    /// <summary>Failed sign-ins allowed per account within <see cref="SignInWindow"/> before it is locked for the rest of it.</summary>
    public int MaxFailedSignInsPerAccount { get; set; } = 5;

    /// <summary>Failed sign-ins allowed per client address within <see cref="SignInWindow"/>.</summary>
    public int MaxFailedSignInsPerAddress { get; set; } = 20;

    public TimeSpan SignInWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a console sign-in lasts (sliding).</summary>
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

    public ConsoleOpenIdConnectOptions OpenIdConnect { get; set; } = new();

    internal IEnumerable<string> Validate()
    {
        if (MaxFailedSignInsPerAccount < 1) yield return $"{SectionName}:MaxFailedSignInsPerAccount must be at least 1.";
        if (MaxFailedSignInsPerAddress < 1) yield return $"{SectionName}:MaxFailedSignInsPerAddress must be at least 1.";
        if (SignInWindow <= TimeSpan.Zero) yield return $"{SectionName}:SignInWindow must be positive, e.g. 00:05:00.";
        if (SessionLifetime <= TimeSpan.Zero) yield return $"{SectionName}:SessionLifetime must be positive, e.g. 08:00:00.";
        for (var i = 0; i < Operators.Count; i++)
        {
            var account = Operators[i];
            var key = $"{SectionName}:Operators:{i}";
            if (!Identifiers.IsValidReference(account.Id)) yield return $"{key}:Id must be 1-128 letters, digits, '-', '_', '.', ':' or '/'.";
            if (account.PasswordHash is null || !account.PasswordHash.StartsWith("pbkdf2-sha256$", StringComparison.Ordinal))
            {
                yield return $"{key}:PasswordHash must be a PBKDF2 hash (pbkdf2-sha256$iterations$salt$hash), never a plain password.";
            }

            if (account.Roles.Count == 0) yield return $"{key}:Roles must name at least one of {string.Join(", ", ControlPlane.Operators.OperatorRoles.All)}.";
            foreach (var role in account.Roles.Where(r => !ControlPlane.Operators.OperatorRoles.All.Contains(r)))
            {
                yield return $"{key}:Roles has '{role}'; roles are {string.Join(", ", ControlPlane.Operators.OperatorRoles.All)}.";
            }
        }

        if (OpenIdConnect.Enabled)
        {
            var key = $"{SectionName}:OpenIdConnect";
            if (!Uri.TryCreate(OpenIdConnect.Authority, UriKind.Absolute, out _)) yield return $"{key}:Authority must be the identity provider's absolute URL.";
            if (string.IsNullOrWhiteSpace(OpenIdConnect.ClientId)) yield return $"{key}:ClientId is required when OpenID Connect is enabled.";
            if (string.IsNullOrWhiteSpace(OpenIdConnect.OperatorClaim)) yield return $"{key}:OperatorClaim names the claim holding the operator id.";
        }
    }
}

internal sealed class ConsoleOperatorOptions
{
    public string Id { get; set; } = "";

    public string? PasswordHash { get; set; }

    public List<string> Roles { get; set; } = [];

    /// <summary>Empty: every tenant.</summary>
    public List<string> Tenants { get; set; } = [];
}

/// <summary>
/// Production sign-in through an identity provider. The provider proves who the person is; roles and
/// tenants still come from the operator account with the id in <see cref="OperatorClaim"/>.
/// </summary>
internal sealed class ConsoleOpenIdConnectOptions
{
    public bool Enabled { get; set; }

    public string? Authority { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>The claim whose value is the operator id (e.g. preferred_username, email, sub).</summary>
    public string OperatorClaim { get; set; } = "preferred_username";

    public List<string> Scopes { get; set; } = ["openid", "profile", "email"];
}
