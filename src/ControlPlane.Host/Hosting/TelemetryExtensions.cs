using ControlPlane.Guard;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ControlPlane.Host.Hosting;

internal static class TelemetryExtensions
{
    /// <summary>
    /// Metrics for /metrics (Prometheus), always; traces and OTLP export only when the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or its per-signal variants) is configured, so a host without a
    /// collector builds no spans at all.
    /// </summary>
    public static IHostApplicationBuilder AddControlPlaneTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHostedService<ApprovalQueueSampler>();

        var config = builder.Configuration;
        bool Configured(string key) => !string.IsNullOrWhiteSpace(config[key]);
        var otlpTraces = Configured("OTEL_EXPORTER_OTLP_ENDPOINT") || Configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        var otlpMetrics = Configured("OTEL_EXPORTER_OTLP_ENDPOINT") || Configured("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName: config["OTEL_SERVICE_NAME"] ?? "controlplane"))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(GuardMetrics.MeterName)
                    // The guard takes microseconds to milliseconds: buckets where its latency actually lives.
                    .AddView("controlplane.guard.duration", new ExplicitBucketHistogramConfiguration { Boundaries = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] })
                    .AddView("controlplane.audit.batch_lag", new ExplicitBucketHistogramConfiguration { Boundaries = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000] })
                    .AddPrometheusExporter();
                if (otlpMetrics) metrics.AddOtlpExporter();
            });

        if (otlpTraces)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(GuardTelemetry.SourceName)
                .AddAspNetCoreInstrumentation(o =>
                {
                    // Probes and scrapes would drown the interesting spans.
                    o.Filter = http => http.Request.Path is var p && !(p.StartsWithSegments("/healthz") || p.StartsWithSegments("/readyz") || p.StartsWithSegments("/metrics"));
                })
                .AddOtlpExporter());
        }

        return builder;
    }
}
