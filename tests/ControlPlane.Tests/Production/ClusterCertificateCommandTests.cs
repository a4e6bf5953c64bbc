using ControlPlane.Host.Cluster;

namespace ControlPlane.Tests.Production;

/// <summary><c>ControlPlane.Host cluster new-certificate</c>: the quick way to the certificate production now requires.</summary>
public sealed class ClusterCertificateCommandTests
{
    [Fact]
    public void It_writes_a_certificate_the_production_profile_accepts_readable_by_the_owner_only_and_never_overwrites_one()
    {
        var root = Directory.CreateTempSubdirectory("cp-clustercert-").FullName;
        try
        {
            var dir = Path.Combine(root, "tls");
            Assert.Equal(0, ClusterCertificateCommand.Run(["new-certificate", "--out", dir, "--days", "30"]));

            var pfx = Path.Combine(dir, ClusterCertificateCommand.FileName);
            var tls = new ClusterTlsOptions { CertificatePath = pfx, PasswordFile = Path.Combine(dir, ClusterCertificateCommand.PasswordFileName) };
            Assert.Empty(tls.Validate("ControlPlane:Cluster:Tls"));
            using (var certificate = tls.LoadCertificate())
            {
                Assert.InRange((certificate.NotAfter.ToUniversalTime() - DateTime.UtcNow).TotalDays, 29, 31);
            }

            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(pfx));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, ClusterCertificateCommand.PasswordFileName)));
            }

            var password = File.ReadAllText(tls.PasswordFile);
            Assert.Contains("s:Password and s:PasswordFile are alternatives", string.Join(" ", new ClusterTlsOptions { CertificatePath = pfx, Password = password, PasswordFile = tls.PasswordFile }.Validate("s")));
            Assert.Empty(new ClusterTlsOptions { CertificatePath = pfx, Password = password }.Validate("s"));
            Assert.NotEmpty(new ClusterTlsOptions { CertificatePath = pfx, Password = "wrong" }.Validate("s"));

            // A second run never replaces the cluster's certificate (that is a rotation, done on purpose).
            var before = File.ReadAllBytes(pfx);
            Assert.Equal(2, ClusterCertificateCommand.Run(["new-certificate", "--out", dir]));
            Assert.Equal(before, File.ReadAllBytes(pfx));
            Assert.Equal(2, ClusterCertificateCommand.Run(["new-certificate"]));
            Assert.Equal(2, ClusterCertificateCommand.Run(["new-certificate", "--out", Path.Combine(root, "other"), "--days", "0"]));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
