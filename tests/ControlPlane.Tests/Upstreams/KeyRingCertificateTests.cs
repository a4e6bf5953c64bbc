using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.Tests.EndToEnd;
using ControlPlane.Tests.Infrastructure;
using ControlPlane.Upstreams;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Tests.Upstreams;

/// <summary>The key ring on disk encrypted to a certificate from configuration (ControlPlane:KeyRing).</summary>
public sealed class KeyRingCertificateTests
{
    [UpstreamFact]
    public async Task With_a_certificate_the_key_files_are_encrypted_and_useless_without_it()
    {
        const string password = "pfx-password-for-the-test";
        using var certificate = CreateCertificate();
        var pfx = Path.Combine(Directory.CreateTempSubdirectory("cp-keyring-").FullName, "keyring.pfx");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pkcs12, password));

        await using var host = await ControlPlaneTestHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["ControlPlane:KeyRing:CertificatePath"] = pfx,
            ["ControlPlane:KeyRing:CertificatePassword"] = password,
        });

        // Credentials still go in and come out: the upstream gets its secret.
        const string secret = "keyring-protected-secret-31337";
        await host.RegisterNodeAsync("lab-keyring", UpstreamPackages.Lab, env: new() { ["LAB_TOKEN"] = secret }, trustAnnotations: true);
        var (token, _) = await host.MintAsync("demo", "keyring-agent", scopes: ["server:lab-keyring:read"]);
        await using (var client = await host.ConnectAsync(token))
        {
            Assert.Equal(secret.Length.ToString(), RefusalAssert.Text(await client.CallToolAsync("lab-keyring__token_length")));
        }

        // Every key file holds its key encrypted to the certificate, none in clear.
        var keyDirectory = new DirectoryInfo(Path.Combine(host.DataDir, "keys"));
        var keyFiles = keyDirectory.GetFiles("key-*.xml");
        Assert.NotEmpty(keyFiles);
        foreach (var file in keyFiles)
        {
            var xml = await File.ReadAllTextAsync(file.FullName);
            Assert.Contains("encryptedSecret", xml, StringComparison.Ordinal);
            Assert.DoesNotContain("<value>", xml, StringComparison.Ordinal);
        }

        // A copy of the key files decrypts the stored credential only together with the certificate.
        var stored = (await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IUpstreamRegistryGrain>(IUpstreamRegistryGrain.Singleton).GetAsync())
            .Servers.Single(s => s.Id == "lab-keyring").ProtectedSecrets!;
        var copy = Directory.CreateTempSubdirectory("cp-keyring-copy-");
        foreach (var file in keyFiles) file.CopyTo(Path.Combine(copy.FullName, file.Name));

        var withoutCertificate = DataProtectionProvider.Create(copy, b => b.SetApplicationName("controlplane")).CreateProtector("ControlPlane.Upstreams.Credentials.v1");
        Assert.ThrowsAny<CryptographicException>(() => withoutCertificate.Unprotect(stored));
        using var reloaded = X509CertificateLoader.LoadPkcs12FromFile(pfx, password, X509KeyStorageFlags.EphemeralKeySet);
        var withCertificate = DataProtectionProvider.Create(copy, b => b.SetApplicationName("controlplane"), reloaded).CreateProtector("ControlPlane.Upstreams.Credentials.v1");
        Assert.Contains(secret, withCertificate.Unprotect(stored), StringComparison.Ordinal);
    }

    [Fact]
    public void A_certificate_that_cannot_be_used_stops_the_start_naming_the_key()
    {
        var missing = new ControlPlane.Upstreams.KeyRing.KeyRingOptions { CertificatePath = "/nonexistent/keyring.pfx" };
        Assert.Contains("ControlPlane:KeyRing:CertificatePath", Assert.Throws<InvalidOperationException>(() => missing.LoadCertificate()).Message, StringComparison.Ordinal);

        var noPath = new ControlPlane.Upstreams.KeyRing.KeyRingOptions { CertificatePassword = "x" };
        Assert.Contains("ControlPlane:KeyRing:CertificatePath", Assert.Throws<InvalidOperationException>(() => noPath.LoadCertificate()).Message, StringComparison.Ordinal);

        Assert.Null(new ControlPlane.Upstreams.KeyRing.KeyRingOptions().LoadCertificate());
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=controlplane-keyring-test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
