using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Host.Cluster;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Tests.Security;

/// <summary>Who a silo accepts as a peer: the pinned cluster certificate, extra pins, or certificates of the configured CA.</summary>
public sealed class ClusterPeerTrustTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cp-peers-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Without_a_ca_only_the_own_certificate_and_pinned_thumbprints_are_peers()
    {
        using var own = SelfSigned("CN=silo");
        using var sameName = SelfSigned("CN=silo");
        using var extra = SelfSigned("CN=next-silo");
        var trust = new ClusterTls.PeerTrust(own, new ClusterTlsOptions { AllowedThumbprints = [extra.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant()] }, _time);

        Assert.True(trust.IsTrusted(Public(own), null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.True(trust.IsTrusted(Public(extra), null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(trust.IsTrusted(Public(sameName), null, SslPolicyErrors.None));

        // A pinned certificate past its validity is no longer a peer.
        _time.Advance(TimeSpan.FromDays(3));
        Assert.False(trust.IsTrusted(Public(own), null, SslPolicyErrors.None));
    }

    [Fact]
    public void With_a_ca_certificates_it_issued_are_peers_and_another_cas_are_not()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = Authority("CN=cluster-ca", caKey);
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var otherCa = Authority("CN=cluster-ca", otherKey);
        var caPath = Path.Combine(_dir, "ca.crt");
        File.WriteAllText(caPath, ca.ExportCertificatePem());

        using var own = Issued(ca, "CN=silo-1");
        using var sibling = Issued(ca, "CN=silo-2");
        using var stranger = Issued(otherCa, "CN=silo-3");
        var trust = new ClusterTls.PeerTrust(own, new ClusterTlsOptions { CaCertificatePath = caPath }, _time);

        Assert.True(trust.IsTrusted(Public(sibling), null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(trust.IsTrusted(Public(stranger), null, SslPolicyErrors.None));
    }

    private static X509Certificate2 Public(X509Certificate2 certificate) => X509CertificateLoader.LoadCertificate(certificate.RawData);

    private X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var now = _time.GetUtcNow();
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    private X509Certificate2 Authority(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = _time.GetUtcNow();
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));
    }

    private X509Certificate2 Issued(X509Certificate2 ca, string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = _time.GetUtcNow();
        using var issued = request.Create(ca, now.AddMinutes(-1), now.AddDays(1), RandomNumberGenerator.GetBytes(8));
        return issued.CopyWithPrivateKey(key);
    }
}
