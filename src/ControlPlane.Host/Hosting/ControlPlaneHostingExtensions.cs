using System.Net;
using System.Text.Json.Serialization;
using ControlPlane.Audit;
using ControlPlane.Grains;
using ControlPlane.Guard;
using ControlPlane.Guard.Authentication;
using ControlPlane.Guard.State;
using ControlPlane.Host.Api;
using ControlPlane.Host.Cluster;
using ControlPlane.Host.Drills;
using ControlPlane.Host.Mcp;
using ControlPlane.Host.Operations;
using ControlPlane.Host.Security;
using ControlPlane.Host.Seeding;
using ControlPlane.SupportDesk;
using ControlPlane.Upstreams;
using ControlPlane.Upstreams.KeyRing;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace ControlPlane.Host.Hosting;

public static class ControlPlaneHostingExtensions
{
    private const string DefaultUrls = "http://127.0.0.1:5080";

    /// <summary>
    /// Adds the whole control plane to a web host: a co-hosted silo with its grains and storage, the
    /// guard, the MCP endpoint, the operator API and the sample tool server.
    /// </summary>
    public static IHostApplicationBuilder AddControlPlane(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(ControlPlaneOptions.SectionName);
        var settings = section.Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
        var clusterDatabase = builder.Configuration.GetConnectionString(ControlPlaneOptions.ConnectionStringName);
        var problems = settings.Validate(clusterDatabase).ToList();
        if (problems.Count > 0) throw new OptionsValidationException(ControlPlaneOptions.SectionName, typeof(ControlPlaneOptions), problems);

        builder.Services.AddOptions<ControlPlaneOptions>().Bind(section);
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey])) builder.Configuration[WebHostDefaults.ServerUrlsKey] = DefaultUrls;

        // Loopback only unless the deployment says otherwise: the Host half of DNS-rebinding protection.
        if (string.IsNullOrEmpty(builder.Configuration["AllowedHosts"])) builder.Configuration["AllowedHosts"] = "localhost;127.0.0.1;[::1]";

        // The embedded default runs on the operator's own machine, beside the upstreams they try (npm servers over
        // stdio, HTTP servers on loopback), as the contract's server registration expects; production keeps the strict
        // defaults (no stdio command, no loopback address) until configured. Private and link-local stay refused.
        if (settings.IsEmbedded)
        {
            const string Egress = "ControlPlane:Upstreams:Egress", Stdio = "ControlPlane:Upstreams:Stdio:AllowedCommands";
            if (string.IsNullOrEmpty(builder.Configuration[$"{Egress}:AllowLoopback"])) builder.Configuration[$"{Egress}:AllowLoopback"] = "true";
            if (!builder.Configuration.GetSection(Stdio).GetChildren().Any())
            {
                builder.Configuration[$"{Stdio}:0"] = "node";
                builder.Configuration[$"{Stdio}:1"] = "npx";
            }
        }

        var dataDir = settings.FullDataDir;
        Directory.CreateDirectory(dataDir);

        if (settings.IsProduction)
        {
            // Orleans' schema before the silo starts: hosted services start in registration order.
            builder.Services.AddHostedService(sp => new OrleansSchemaStartup(clusterDatabase!, sp.GetRequiredService<ILogger<OrleansSchemaStartup>>()));
            ProductionCluster.DefaultAuditToClusterDatabase(builder.Configuration, clusterDatabase!);
        }

        builder.UseOrleans(silo =>
        {
            if (settings.Cluster.Tls.Enabled) silo.UseClusterTls(settings.Cluster.Tls, TimeProvider.System);
            if (settings.IsProduction)
            {
                silo.UseProductionCluster(settings, clusterDatabase!);
                return;
            }

            var primary = settings.PrimarySiloPort is { } port ? new IPEndPoint(IPAddress.Loopback, port) : null;
            silo.UseLocalhostClustering(settings.SiloPort, settings.GatewayPort, primary, serviceId: "controlplane", clusterId: "controlplane-embedded");
            silo.AddControlPlaneGrains(Path.Combine(dataDir, "grains.db"));
        });

        builder.Services.AddControlPlaneAudit(builder.Configuration, dataDir, generateKey: settings.IsEmbedded);
        builder.Services.AddControlPlaneGuard(builder.Configuration);
        builder.Services.AddSupportDesk(Path.Combine(dataDir, "support-desk.db"));
        builder.Services.AddHostedService<SupportDeskInitializer>();
        builder.Services.AddSingleton<IToolSource, SupportDeskToolSource>();
        // Upstream credentials, console cookies and anti-forgery tokens are protected with one key ring that every
        // silo must share: the data directory's in the embedded default, the cluster database in production.
        // Stdio upstreams work beside the data directory, never in it: one directory per silo, one per server inside it.
        builder.Services.AddControlPlaneUpstreams(builder.Configuration, keyRingDirectory: settings.IsProduction ? null : Path.Combine(dataDir, "keys"),
            dataDirectory: dataDir, defaultWorkDirectory: UpstreamWorkRoot(dataDir, settings.SiloPort));
        if (settings.IsProduction) builder.Services.AddDataProtection().PersistKeysToPostgres(clusterDatabase!);
        builder.Services.AddSingleton<UpstreamServerService>();

        builder.Services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, AgentTokenAuthenticationHandler>(AgentTokenAuthenticationHandler.SchemeName, null)
            .AddScheme<AuthenticationSchemeOptions, OperatorKeyAuthenticationHandler>(OperatorKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AgentTokenAuthenticationHandler.SchemeName, p => p.AddAuthenticationSchemes(AgentTokenAuthenticationHandler.SchemeName).RequireAuthenticatedUser())
            .AddPolicy(OperatorKeyAuthenticationHandler.SchemeName, p => p.AddAuthenticationSchemes(OperatorKeyAuthenticationHandler.SchemeName).RequireAuthenticatedUser());

        builder.Services.AddGuardedMcp(settings.Sessions);

        builder.Services.AddSingleton<OperatorAuditor>();
        builder.Services.AddSingleton<KillSwitchService>();
        builder.Services.AddSingleton<ClusterService>();
        builder.Services.AddSingleton<TenantService>();
        builder.Services.AddSingleton<TokenService>();
        builder.Services.AddSingleton<PolicyService>();
        builder.Services.AddSingleton<AuditService>();
        builder.Services.AddSingleton<ApprovalService>();
        builder.Services.AddSingleton<DemoSeeder>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DemoSeeder>());
        builder.Services.AddSingleton<AdminBootstrapper>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AdminBootstrapper>());
        builder.Services.AddHostedService<AuditRetentionScheduler>();
        builder.Services.AddHostedService<SessionRecordRetentionScheduler>();
        builder.Services.AddKillSwitchDrills(builder.Configuration);

        // Registered after the silo: the drain runs in the stopping phase, before anything stops serving.
        builder.Services.AddSingleton<Shutdown.ShutdownDrain>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Shutdown.ShutdownDrain>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.Shutdown.EffectiveDrainDelay(settings.IsProduction) + TimeSpan.FromSeconds(30));

        builder.AddControlPlaneTelemetry();

        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            // Say what is wrong with an unreadable body (a repeated key, a wrong type, truncated JSON): the serializer's
            // message names the property path and position, never a value.
            if (context.Exception is Microsoft.AspNetCore.Http.BadHttpRequestException { InnerException: System.Text.Json.JsonException json })
            {
                context.ProblemDetails.Detail = "The request body is not acceptable JSON for this request: " + json.Message;
            }
        });
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            // A repeated key is ambiguous (which value did the operator mean?): 400, never "the last one wins".
            o.SerializerOptions.AllowDuplicateProperties = false;
        });
        builder.Services.Configure<KestrelServerOptions>(o => o.Limits.MaxRequestBodySize = settings.MaxRequestBodyBytes);
        builder.Services.Configure<FormOptions>(o => o.MultipartBodyLengthLimit = settings.MaxRequestBodyBytes);
        return builder;
    }

    /// <summary><c>&lt;DataDir&gt;-upstreams/silo-&lt;port&gt;</c>: a sibling of the data directory, per silo (embedded silos may share a machine and a data directory).</summary>
    internal static string UpstreamWorkRoot(string dataDir, int siloPort)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dataDir));
        return Path.Combine(full + "-upstreams", "silo-" + siloPort);
    }

    /// <summary>Maps health, the MCP endpoints and the operator API, behind host and origin checks.</summary>
    public static WebApplication MapControlPlane(this WebApplication app)
    {
        app.UseApiSecurityHeaders();
        app.UseExceptionHandler(new ExceptionHandlerOptions { StatusCodeSelector = StatusFor });
        app.UseStatusCodePages();
        app.UseMiddleware<OriginCheckMiddleware>();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", (GuardStateCache guardState, DemoSeeder seeder, AdminBootstrapper bootstrap, Shutdown.ShutdownDrain drain) =>
            drain.IsDraining ? Results.Text("draining: this silo is stopping", statusCode: StatusCodes.Status503ServiceUnavailable)
            : guardState.IsLoaded && guardState.IsFresh && seeder.Completion.IsCompleted && bootstrap.Completion.IsCompleted
                ? Results.Text("ready")
                : Results.Text(guardState.IsLoaded ? "guard state is stale" : "loading guard state", statusCode: StatusCodes.Status503ServiceUnavailable));

        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGuardedMcp();
        app.MapOperatorApi();
        return app;
    }

    private static int StatusFor(Exception exception) => exception switch
    {
        Microsoft.AspNetCore.Http.BadHttpRequestException bad => bad.StatusCode,
        // The cluster or its database could not answer (a silo just died, PostgreSQL is down): the operator should
        // check and retry, which a 503 says and a 500 does not.
        Orleans.Runtime.OrleansException or TimeoutException or System.Data.Common.DbException => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };
}
