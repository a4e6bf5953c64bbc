using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ControlPlane.Upstreams;

public static class UpstreamServiceCollectionExtensions
{
    /// <summary>
    /// Registers the gateway to upstream MCP servers: its options, the Data Protection that encrypts their
    /// credentials, and the hosted service that keeps this silo's connections in line with the registry.
    /// <paramref name="keyRingDirectory"/> persists the key ring on disk (the embedded default); pass null when the
    /// host persists it elsewhere (for example <c>AddDataProtection().AddKeyManagementOptions(o => o.XmlRepository = ...)</c>
    /// over PostgreSQL), which every silo of the cluster must share. <c>ControlPlane:KeyRing:CertificatePath</c> (a .pfx) encrypts
    /// the keys at rest with that certificate. <paramref name="defaultWorkDirectory"/> is where stdio upstreams work unless
    /// <c>ControlPlane:Upstreams:Stdio:WorkDirectory</c> says otherwise; neither may be inside <paramref name="dataDirectory"/>.
    /// </summary>
    public static IServiceCollection AddControlPlaneUpstreams(this IServiceCollection services, IConfiguration configuration, string? keyRingDirectory,
        string? dataDirectory = null, string? defaultWorkDirectory = null)
    {
        var section = configuration.GetSection(UpstreamOptions.SectionName);
        var options = section.Get<UpstreamOptions>() ?? new UpstreamOptions();
        options.Stdio.WorkDirectory ??= defaultWorkDirectory;
        var problems = options.Validate().ToList();
        if (options.Stdio.RefuseWorkDirectory(dataDirectory) is { } workProblem) problems.Add(workProblem + ".");
        if (problems.Count > 0) throw new OptionsValidationException(UpstreamOptions.SectionName, typeof(UpstreamOptions), problems);
        services.AddOptions<UpstreamOptions>().Bind(section).PostConfigure(o => o.Stdio.WorkDirectory ??= defaultWorkDirectory);

        var dataProtection = services.AddDataProtection().SetApplicationName("controlplane");

        // Optional at-rest encryption of the key ring itself, whichever store holds it (ops/runbook.md, section 3).
        if ((configuration.GetSection(KeyRing.KeyRingOptions.SectionName).Get<KeyRing.KeyRingOptions>() ?? new()).LoadCertificate() is { } certificate)
        {
            dataProtection.ProtectKeysWithCertificate(certificate);
        }

        if (keyRingDirectory is not null)
        {
            // The keys decrypt every upstream credential: only the service's own user may read them.
            var directory = Directory.CreateDirectory(keyRingDirectory);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(directory.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            dataProtection.PersistKeysToFileSystem(directory);
        }

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<UpstreamSecretProtector>();
        services.TryAddSingleton(sp => new Egress.EgressPolicy(sp.GetRequiredService<IOptions<UpstreamOptions>>().Value.Egress));
        services.TryAddSingleton<UpstreamGateway>();
        services.TryAddSingleton<UpstreamReadGateway>();
        services.AddHostedService(sp => sp.GetRequiredService<UpstreamGateway>());
        services.AddSingleton<ControlPlane.Guard.Catalog.IToolServerAvailability>(sp => sp.GetRequiredService<UpstreamGateway>());
        return services;
    }
}
