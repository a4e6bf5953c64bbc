using ControlPlane.Guard.Limits;
using ControlPlane.Guard.Auditing;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.Catalog;
using ControlPlane.Guard.InFlight;
using ControlPlane.Guard.Pipeline;
using ControlPlane.Guard.Pipeline.Steps;
using ControlPlane.Guard.State;
using ControlPlane.GuardState;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ControlPlane.Guard;

public static class GuardServiceCollectionExtensions
{
    /// <summary>
    /// Registers the per-call guard: the silo-local guard state and its synchronizer, token validation,
    /// the steps in their order, and the gateway that MCP endpoints call. Needs a silo in the same host.
    /// </summary>
    public static IServiceCollection AddControlPlaneGuard(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GuardStateOptions>()
            .Bind(configuration.GetSection(GuardStateOptions.SectionName))
            .Validate(o => o.PollInterval > TimeSpan.Zero, $"{GuardStateOptions.SectionName}:PollInterval must be positive.")
            .Validate(o => o.StaleAfter > o.PollInterval, $"{GuardStateOptions.SectionName}:StaleAfter must be longer than PollInterval.")
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GuardStateCache>();
        services.TryAddSingleton<IGuardStateListener>(sp => sp.GetRequiredService<GuardStateCache>());
        services.AddHostedService<GuardStateSynchronizer>();
        services.TryAddSingleton<InFlightCalls>();
        services.TryAddSingleton<AgentTokenValidator>();
        services.TryAddSingleton<TokenIds>();
        services.TryAddSingleton<ApprovalIds>();
        services.TryAddSingleton<SessionRegistry>();
        services.TryAddSingleton<ISiloIdentity, OrleansSiloIdentity>();

        // The guard's checks and stages; their order is written once, in GuardPipeline.Create.
        services.TryAddSingleton<GuardCallBuilder>();
        services.TryAddSingleton<Pipeline.Stages.AuditStage>();
        services.TryAddSingleton<Pipeline.Stages.ActionCommitStage>();
        services.TryAddSingleton<Pipeline.Stages.ShapingStage>();
        services.TryAddSingleton<Pipeline.Stages.InFlightStage>();
        services.TryAddSingleton<Pipeline.Stages.DownstreamStage>();
        services.TryAddSingleton<KillSwitchStep>();
        services.TryAddSingleton<AuthenticationStep>();
        services.TryAddSingleton<ScopeStep>();
        services.TryAddSingleton<ModeStep>();
        services.TryAddSingleton<SchemaStep>();
        services.TryAddSingleton<ConfirmationStep>();
        services.TryAddSingleton<ApprovalNotifier>();
        services.AddHostedService(sp => sp.GetRequiredService<ApprovalNotifier>());
        services.TryAddSingleton<RateLimitBridge>();
        // Exact arguments of pending approvals are sealed with the host's Data Protection key ring.
        services.AddDataProtection();
        services.TryAddSingleton<ControlPlane.Guard.Approvals.ApprovalArgumentSeal>();
        services.TryAddSingleton<RateLimitLeases>();
        services.TryAddSingleton<RateLimitStep>();
        services.AddOptions<Limits.RateLimitOptions>().Bind(configuration.GetSection(Limits.RateLimitOptions.SectionName));
        services.AddOptions<ConfirmationOptions>().Bind(configuration.GetSection(ConfirmationOptions.SectionName))
            .Validate(o => o.RequestLifetime > TimeSpan.Zero && o.TokenLifetime > TimeSpan.Zero, $"{ConfirmationOptions.SectionName} lifetimes must be positive.")
            .Validate(o => o.WebhookUrl is null || Uri.TryCreate(o.WebhookUrl, UriKind.Absolute, out _), $"{ConfirmationOptions.SectionName}:WebhookUrl must be an absolute URL.")
            .ValidateOnStart();
        services.TryAddKeyedSingleton(ControlPlaneClock.ServiceKey, (sp, _) => sp.GetRequiredService<TimeProvider>());
        services.TryAddSingleton(sp => GuardPipeline.Create(sp));

        services.TryAddSingleton(sp => new ToolCatalog(sp.GetServices<IToolSource>().SelectMany(s => s.GetTools())));
        services.TryAddSingleton<CallAuditor>();
        services.TryAddSingleton<Results.ResultShaper>();
        services.TryAddSingleton(sp => sp.GetRequiredService<Results.ResultShaper>().Advertised);
        services.TryAddSingleton<Limits.DownstreamProtection>();
        services.AddOptions<Limits.DownstreamOptions>().Bind(configuration.GetSection(Limits.DownstreamOptions.SectionName));
        services.AddOptions<Results.ResultOptions>().Bind(configuration.GetSection(Results.ResultOptions.SectionName));
        services.AddMetrics();
        services.TryAddSingleton<GuardMetrics>();
        services.TryAddSingleton<GuardedToolGateway>();
        return services;
    }
}

/// <summary>A tool server whose tools the catalog serves.</summary>
public interface IToolSource
{
    IEnumerable<ToolDescriptor> GetTools();
}

internal sealed class OrleansSiloIdentity(Orleans.Runtime.ILocalSiloDetails silo) : ISiloIdentity
{
    public string Name => silo.Name;
}
