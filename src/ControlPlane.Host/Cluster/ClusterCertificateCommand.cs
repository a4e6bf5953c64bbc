using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Host.Cluster;

/// <summary>
/// <c>cluster new-certificate --out &lt;dir&gt; [--days 365]</c>: makes the certificate a production cluster's silos
/// share for mutual TLS (ECDSA P-256, server and client authentication, pinned by its SHA-256 thumbprint), as a
/// password-protected .pfx with its password beside it, both readable by the owner only. For per-silo certificates
/// from your own CA, see ops/runbook.md section 7; this is the quick way to a cluster nobody else can join.
/// </summary>
internal static class ClusterCertificateCommand
{
    public const string FileName = "cluster-tls.pfx";
    public const string PasswordFileName = "cluster-tls.password";

    public static int Run(string[] args)
    {
        if (args is not ["new-certificate", ..] || Option(args, "--out") is not { Length: > 0 } outDir)
        {
            Console.Error.WriteLine("usage: ControlPlane.Host cluster new-certificate --out <directory> [--days <validity, default 365>]");
            return 2;
        }

        var days = 365;
        if (Option(args, "--days") is { } text && (!int.TryParse(text, out days) || days is < 1 or > 3650))
        {
            Console.Error.WriteLine("--days must be a whole number of days between 1 and 3650.");
            return 2;
        }

        var pfxPath = Path.GetFullPath(Path.Combine(outDir, FileName));
        var passwordPath = Path.GetFullPath(Path.Combine(outDir, PasswordFileName));
        if (File.Exists(pfxPath))
        {
            Console.Error.WriteLine($"{pfxPath} exists; a cluster keeps its certificate until you rotate it (ops/runbook.md, section 7). Choose another directory.");
            return 2;
        }

        CreateOwnerOnlyDirectory(outDir);
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        using var certificate = Create(DateTimeOffset.UtcNow, days);
        WriteOwnerOnly(pfxPath, certificate.Export(X509ContentType.Pfx, password));
        WriteOwnerOnly(passwordPath, System.Text.Encoding.UTF8.GetBytes(password));

        Console.WriteLine($"""
            cluster certificate {certificate.GetCertHashString(HashAlgorithmName.SHA256)} (SHA-256), valid until {certificate.NotAfter.ToUniversalTime():u}
            written to {pfxPath} and its password to {passwordPath} (owner only).
            configuration for every silo (the same files on each):
              ControlPlane__Cluster__Tls__CertificatePath={pfxPath}
              ControlPlane__Cluster__Tls__PasswordFile={passwordPath}
            """);
        return 0;
    }

    /// <summary>A certificate every silo can both present and accept: it is server and client at once.</summary>
    internal static X509Certificate2 Create(DateTimeOffset now, int days)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=controlplane-cluster", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(days));
    }

    private static string? Option(string[] args, string name)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }

    private static void CreateOwnerOnlyDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static void WriteOwnerOnly(string path, byte[] content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var file = new FileStream(path, options);
        file.Write(content);
    }
}
