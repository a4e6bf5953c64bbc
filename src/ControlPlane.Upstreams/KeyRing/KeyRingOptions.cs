using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Upstreams.KeyRing;

/// <summary>
/// At-rest protection of the Data Protection key ring (<c>ControlPlane:KeyRing</c>). Without a certificate the key
/// ring is protected by where it lives alone (file mode 0700 in the embedded default, database access in production).
/// With one, every key written from then on is encrypted to the certificate, so a copy of the key files (or of the
/// database table) without the certificate's private key decrypts nothing.
/// </summary>
public sealed class KeyRingOptions
{
    public const string SectionName = "ControlPlane:KeyRing";

    /// <summary>A PKCS#12 (.pfx) file with an RSA certificate and its private key.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The .pfx file's password; pass it from a secret (environment <c>ControlPlane__KeyRing__CertificatePassword</c>), never in a file.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>The certificate, loaded and checked; null when none is configured. Throws with a message naming the key when it cannot be used.</summary>
    public X509Certificate2? LoadCertificate()
    {
        if (string.IsNullOrWhiteSpace(CertificatePath))
        {
            return CertificatePassword is null ? null
                : throw new InvalidOperationException($"{SectionName}:CertificatePassword is set but {SectionName}:CertificatePath is not; set the path of the .pfx file.");
        }

        if (!File.Exists(CertificatePath)) throw new InvalidOperationException($"{SectionName}:CertificatePath: no file at '{CertificatePath}'.");
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(CertificatePath, CertificatePassword, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException($"{SectionName}:CertificatePath: '{CertificatePath}' is not a PKCS#12 file this password opens ({SectionName}:CertificatePassword): {ex.Message}", ex);
        }

        if (!certificate.HasPrivateKey || certificate.GetRSAPrivateKey() is null)
        {
            certificate.Dispose();
            throw new InvalidOperationException($"{SectionName}:CertificatePath: '{CertificatePath}' needs an RSA certificate with its private key (it decrypts the key ring).");
        }

        return certificate;
    }
}
