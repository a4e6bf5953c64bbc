using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ControlPlane.GuardState;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace ControlPlane.Tests.Production;

/// <summary>
/// What an attacker on the cluster's network would try: an Orleans client that finds the silos through the shared
/// membership table and calls the grain that owns every kill switch.
/// </summary>
internal static class OrleansClientProbe
{
    /// <summary>Null if the client reached the guard-state grain, else what stopped it.</summary>
    public static async Task<Exception?> TryCallGuardStateAsync(string connectionString, string clusterId, X509Certificate2? certificate, TimeSpan timeout)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(options =>
            {
                options.ClusterId = clusterId;
                options.ServiceId = clusterId;
            });
            client.UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = connectionString;
            });
            if (certificate is not null)
            {
                // The attacker trusts whatever the silo presents: what decides is whether the silo trusts the client.
                client.UseTls(certificate, options => options.AllowAnyRemoteCertificate());
            }
        });

        using var host = builder.Build();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await host.StartAsync(deadline.Token);
            var grains = host.Services.GetRequiredService<IClusterClient>();
            await grains.GetGrain<IGuardStateGrain>(IGuardStateGrain.Singleton).GetVersionAsync().WaitAsync(deadline.Token);
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
        finally
        {
            try
            {
                await host.StopAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception)
            {
                // A client that never connected may not stop cleanly; nothing is left to clean up.
            }
        }
    }

    public static X509Certificate2 Load(string pfxPath, string password) => X509CertificateLoader.LoadPkcs12FromFile(pfxPath, password);

    public static string Thumbprint(X509Certificate2 certificate) => certificate.GetCertHashString(HashAlgorithmName.SHA256);
}
