using ControlPlane.Host.Hosting;
using Microsoft.Extensions.Options;

namespace ControlPlane.Tests.Production;

/// <summary>A production silo with missing or bad settings stops at start with a message that names the key.</summary>
public sealed class ProductionProfileValidationTests
{
    private const string Database = "Host=127.0.0.1;Port=5432;Username=postgres;Password=postgres;Database=controlplane";

    [Theory]
    [InlineData(null, null, "ConnectionStrings:ControlPlane is required when ControlPlane:Profile is Production")]
    [InlineData(Database, "ControlPlane:Profile=Cluster", "ControlPlane:Profile 'Cluster' is unknown")]
    [InlineData(Database, "ControlPlane:AdvertisedIPAddress=silo-1", "ControlPlane:AdvertisedIPAddress 'silo-1' is not an IP address")]
    [InlineData(Database, "ControlPlane:Bootstrap:AdminKeyHash=0123", "ControlPlane:Bootstrap:AdminKeyHash must be 'sha256:' followed by 64 hex digits")]
    [InlineData(Database, "ControlPlane:PrimarySiloPort=11111", "ControlPlane:PrimarySiloPort is for embedded silos only")]
    [InlineData(Database, "ControlPlane:ClusterId= ", "ControlPlane:ClusterId must not be empty")]
    [InlineData(Database, null, "ControlPlane:Cluster:Tls:CertificatePath (or ControlPlane:Cluster:Tls:Thumbprint) is required when ControlPlane:Profile is Production")]
    public void A_bad_production_setting_stops_the_host_naming_the_key(string? connectionString, string? extra, string expected)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ControlPlane:Profile"] = "Production",
            ["ControlPlane:DataDir"] = Path.Combine(Path.GetTempPath(), "cp-validation-" + Guid.NewGuid().ToString("N")[..8]),
            ["ConnectionStrings:ControlPlane"] = connectionString,
        };
        if (extra is not null)
        {
            var (key, value) = (extra[..extra.IndexOf('=')], extra[(extra.IndexOf('=') + 1)..]);
            settings[key] = value;
        }

        var error = Assert.Throws<OptionsValidationException>(() => ControlPlaneApplication.Build(settings));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void The_hash_printed_by_operators_new_key_is_what_the_bootstrap_accepts()
    {
        var (_, key, hash) = ControlPlane.Guard.Authentication.SecretTokens.Create(ControlPlane.Guard.Authentication.SecretTokens.OperatorPrefix, "admin");
        var options = new BootstrapOptions { AdminKeyHash = BootstrapOptions.FormatHash(hash) };
        Assert.Empty(options.Validate("ControlPlane:Bootstrap"));
        Assert.Equal(hash, options.KeyHashBytes);
        Assert.StartsWith("cpo_admin_", key);
    }
}
