using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Tests.Infrastructure;

/// <summary>Certificates made per test with <see cref="CertificateRequest"/>: nothing checked in, nothing installed.</summary>
public static class TestCertificates
{
    public const string Password = "test-pfx-password";

    /// <summary>A self-signed certificate (server and, unless told otherwise, client authentication) written as a password-protected .pfx.</summary>
    public static string CreatePfx(string directory, string name, string subject, bool clientAuth = true, IPAddress? ipAddress = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var usages = new OidCollection { new("1.3.6.1.5.5.7.3.1") };
        if (clientAuth) usages.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: false));
        if (ipAddress is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(ipAddress);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }

        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(directory, name + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, Password));
        return path;
    }
}
