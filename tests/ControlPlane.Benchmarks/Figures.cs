using System.Globalization;
using HdrHistogram;

namespace ControlPlane.Benchmarks;

/// <summary>Latency figures from an HdrHistogram recorded in microseconds.</summary>
internal sealed record Figures(long Count, double P50Ms, double P90Ms, double P99Ms, double MaxMs)
{
    public static LongHistogram NewHistogram() => new(TimeSpan.FromMinutes(1).Ticks / 10, 3);

    public static Figures From(HistogramBase histogram) => new(
        histogram.TotalCount,
        histogram.GetValueAtPercentile(50) / 1000.0,
        histogram.GetValueAtPercentile(90) / 1000.0,
        histogram.GetValueAtPercentile(99) / 1000.0,
        histogram.GetMaxValue() / 1000.0);

    public string Row(string label, string extra = "") => string.Create(CultureInfo.InvariantCulture,
        $"| {label} | {Count} | {P50Ms:0.000} | {P90Ms:0.000} | {P99Ms:0.000} | {MaxMs:0.000} |{extra}");

    public const string Header = "| measure | n | p50 ms | p90 ms | p99 ms | max ms |";
    public const string Rule = "|---|---|---|---|---|---|";
}
