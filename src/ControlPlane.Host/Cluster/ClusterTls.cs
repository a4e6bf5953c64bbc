using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Orleans.Connections.Security;

namespace ControlPlane.Host.Cluster;

/// <summary><c>ControlPlane:Cluster</c>: how silos talk to each other.</summary>
public sealed class ClusterSecurityOptions
{
    /// <summary><c>ControlPlane:Cluster:Tls</c>: mutual TLS on silo-to-silo and gateway connections.</summary>
    public ClusterTlsOptions Tls { get; set; } = new();

    /// <summary>
    /// <c>ControlPlane:Cluster:EnableGateway</c>: whether production silos open Orleans' client gateway port. Off by
    /// default: the control plane's own clients are co-hosted and need none, and every open port is a way to grains
    /// (with mutual TLS, a gateway client must present a trusted certificate like a silo).
    /// </summary>
    public bool EnableGateway { get; set; }
}

/// <summary>
/// Mutual TLS between silos. Off unless a certificate is named. Every silo presents its certificate and accepts a
/// peer only if the peer's certificate chains to <see cref="CaCertificatePath"/> (when set) or is pinned: the
/// silo's own certificate (one certificate shared by the cluster) or one of <see cref="AllowedThumbprints"/>.
/// </summary>
public sealed class ClusterTlsOptions
{
    /// <summary>PKCS#12 (.pfx) file, or a PEM certificate with <see cref="KeyPath"/>.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>Password of the .pfx (or of an encrypted PEM key).</summary>
    public string? Password { get; set; }

    /// <summary>
    /// Alternatively, a file holding the password (trailing newline ignored): how Kubernetes and compose secrets are
    /// mounted, so the password never sits in an environment variable that child processes or crash dumps could see.
    /// </summary>
    public string? PasswordFile { get; set; }

    /// <summary>PEM private key for a PEM <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Alternatively, the SHA-1 thumbprint of a certificate in the "My" store of <see cref="StoreLocation"/>.</summary>
    public string? Thumbprint { get; set; }

    public StoreLocation StoreLocation { get; set; } = StoreLocation.CurrentUser;

    /// <summary>A PEM or DER CA certificate: peers whose certificates chain to it are accepted (one certificate per silo).</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>SHA-256 thumbprints (hex) of further peer certificates to accept, e.g. during a certificate rotation.</summary>
    public List<string> AllowedThumbprints { get; set; } = [];

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath) || !string.IsNullOrWhiteSpace(Thumbprint);

    internal IEnumerable<string> Validate(string section)
    {
        if (!Enabled)
        {
            if (!string.IsNullOrWhiteSpace(CaCertificatePath) || AllowedThumbprints.Count > 0 || !string.IsNullOrWhiteSpace(KeyPath))
            {
                yield return $"{section}:CertificatePath (or {section}:Thumbprint) is required when other {section} settings are given; without it silo traffic is not encrypted.";
            }

            yield break;
        }

        if (!string.IsNullOrEmpty(Password) && !string.IsNullOrWhiteSpace(PasswordFile))
        {
            yield return $"{section}:Password and {section}:PasswordFile are alternatives; set one.";
            yield break;
        }

        if (!string.IsNullOrWhiteSpace(PasswordFile) && !File.Exists(PasswordFile))
        {
            yield return $"{section}:PasswordFile '{PasswordFile}' does not exist.";
            yield break;
        }

        if (!string.IsNullOrWhiteSpace(CertificatePath) && !string.IsNullOrWhiteSpace(Thumbprint))
        {
            yield return $"{section}:CertificatePath and {section}:Thumbprint are alternatives; set one.";
            yield break;
        }

        string? problem = null;
        try
        {
            using var certificate = LoadCertificate();
            problem = Check(certificate, section);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // The message of a wrong password is about the file, never the password.
            problem = $"{section}:{(CertificatePath is null ? nameof(Thumbprint) : nameof(CertificatePath))} could not be loaded: {ex.Message} (check the path, {section}:Password or {section}:PasswordFile, and {section}:KeyPath).";
        }

        if (problem is not null) yield return problem;

        if (!string.IsNullOrWhiteSpace(CaCertificatePath))
        {
            string? caProblem = null;
            try
            {
                using var ca = X509CertificateLoader.LoadCertificateFromFile(CaCertificatePath);
            }
            catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
            {
                caProblem = $"{section}:CaCertificatePath could not be loaded: {ex.Message}";
            }

            if (caProblem is not null) yield return caProblem;
        }

        foreach (var thumbprint in AllowedThumbprints)
        {
            if (thumbprint.Length != 64 || !thumbprint.All(Uri.IsHexDigit))
            {
                yield return $"{section}:AllowedThumbprints has '{thumbprint}', which is not a SHA-256 thumbprint (64 hex digits).";
            }
        }
    }

    private static string? Check(X509Certificate2 certificate, string section)
    {
        if (!certificate.HasPrivateKey) return $"{section}: the certificate has no private key; a silo must prove it owns its certificate.";
        var now = DateTime.UtcNow;
        if (certificate.NotAfter.ToUniversalTime() < now) return $"{section}: the certificate expired on {certificate.NotAfter.ToUniversalTime():u}.";
        if (certificate.NotBefore.ToUniversalTime() > now) return $"{section}: the certificate is not valid before {certificate.NotBefore.ToUniversalTime():u}.";
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<Oid>()).Select(o => o.Value).ToList();
        if (usages.Count > 0 && !(usages.Contains(ServerAuth) && usages.Contains(ClientAuth)))
        {
            return $"{section}: the certificate must allow both server and client authentication (extended key usages {ServerAuth} and {ClientAuth}): every silo is both.";
        }

        return null;
    }

    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    internal X509Certificate2 LoadCertificate()
    {
        if (!string.IsNullOrWhiteSpace(Thumbprint))
        {
            using var store = new X509Store(StoreName.My, StoreLocation);
            store.Open(OpenFlags.ReadOnly);
            var found = store.Certificates.Find(X509FindType.FindByThumbprint, Thumbprint.Replace(" ", "", StringComparison.Ordinal), validOnly: false);
            return found.Count > 0 ? found[0] : throw new InvalidOperationException($"No certificate with thumbprint {Thumbprint} in {StoreLocation}/My.");
        }

        var password = string.IsNullOrWhiteSpace(PasswordFile) ? Password : File.ReadAllText(PasswordFile).TrimEnd('\r', '\n');
        if (!string.IsNullOrWhiteSpace(KeyPath))
        {
            return string.IsNullOrEmpty(password)
                ? X509Certificate2.CreateFromPemFile(CertificatePath!, KeyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(CertificatePath!, password, KeyPath);
        }

        return X509CertificateLoader.LoadPkcs12FromFile(CertificatePath!, password);
    }
}

/// <summary>Wires <see cref="ClusterTlsOptions"/> into the silo.</summary>
internal static class ClusterTls
{
    public static ISiloBuilder UseClusterTls(this ISiloBuilder silo, ClusterTlsOptions settings, TimeProvider time)
    {
        var certificate = settings.LoadCertificate();
        var trust = new PeerTrust(certificate, settings, time);
        return silo.UseTls(certificate, options =>
        {
            // Both ends present a certificate and check the other's: a silo without a trusted certificate can neither
            // join nor be joined.
            options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
            options.RemoteCertificateValidation = trust.IsTrusted;
        });
    }

    /// <summary>Who a silo accepts as a peer. The names in a certificate do not matter here (silos dial IP addresses): the key does.</summary>
    internal sealed class PeerTrust
    {
        private readonly HashSet<string> _pinned;
        private readonly X509Certificate2? _ca;
        private readonly TimeProvider _time;

        public PeerTrust(X509Certificate2 own, ClusterTlsOptions settings, TimeProvider time)
        {
            _time = time;
            _ca = string.IsNullOrWhiteSpace(settings.CaCertificatePath) ? null : X509CertificateLoader.LoadCertificateFromFile(settings.CaCertificatePath);
            _pinned = new HashSet<string>(settings.AllowedThumbprints.Select(t => t.ToUpperInvariant()), StringComparer.Ordinal);
            if (_ca is null) _pinned.Add(Sha256(own));
        }

        public bool IsTrusted(X509Certificate2 peer, X509Chain? chain, System.Net.Security.SslPolicyErrors errors)
        {
            var now = _time.GetUtcNow().UtcDateTime;
            if (peer.NotBefore.ToUniversalTime() > now || peer.NotAfter.ToUniversalTime() < now) return false;
            if (_pinned.Contains(Sha256(peer))) return true;
            if (_ca is null) return false;

            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.Add(_ca);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            custom.ChainPolicy.VerificationTime = now;
            return custom.Build(peer);
        }

        private static string Sha256(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }
}
