using Flannel.Agent.Metrics;
using Flannel.Reconciliation;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Flannel.Host.Hosting;

/// <summary>
/// <c>/metrics</c> on the health port: the agent's <c>Flannel</c> meter and the backends' <c>Flannel.Backends</c>
/// meter in the Prometheus text format, through OpenTelemetry's Prometheus exporter. The libraries only emit
/// System.Diagnostics.Metrics; choosing this exporter is the host's decision, as it is for any embedder.
/// </summary>
/// <remarks>
/// Only these two meters are exported (no runtime, Kestrel or HTTP client meters), so a scrape stays small and
/// its series do not grow with the number of peers. docs/metrics.md lists every series.
/// </remarks>
internal static class MetricsEndpoint
{
    /// <summary>The scrape path, as Prometheus expects by default.</summary>
    public const string Path = "/metrics";

    /// <summary>
    /// The most series one instrument may have. Every tag is the agent, the backend or a small closed set (netlink
    /// operation and errno, object kind, repair action, reason, result, probe path and state), so no instrument comes
    /// near it; past it, OpenTelemetry adds the measurement to one <c>otel_metric_overflow="true"</c> series, so no
    /// count is lost.
    /// </summary>
    /// <remarks>
    /// OpenTelemetry allocates an instrument's points up front, for its whole cardinality limit. Its default of 2,000
    /// made the 22 instruments' point arrays 3.7 MiB of flanneld's RSS, nearly as much as 5,000 peers' state takes
    /// (README, "Metrics and memory").
    /// </remarks>
    public const int CardinalityLimit = 100;

    /// <summary>Registers the meter provider with the Prometheus exporter.</summary>
    public static void AddServices(IServiceCollection services) =>
        services.AddOpenTelemetry().WithMetrics(static metrics => metrics
            .AddMeter(FlannelMetrics.MeterName, BackendMetrics.MeterName)
            .AddView(static _ => new MetricStreamConfiguration { CardinalityLimit = CardinalityLimit })
            .AddPrometheusExporter(static exporter =>
            {
                // Every scrape sees current values (the default caches a response for 300 ms).
                exporter.ScrapeResponseCacheDurationMilliseconds = 0;
            }));

    /// <summary>
    /// Makes the meter provider listen now, before any hosted service starts. The agent's first measurements (the
    /// counters it adds 0 to, so that they show from the first scrape) are lost to a listener that comes later, and
    /// the exporter's middleware asks for the provider only when Kestrel builds its pipeline, after the agent started.
    /// </summary>
    public static void Listen(IServiceProvider services) => services.GetRequiredService<MeterProvider>();

    /// <summary>
    /// Serves <see cref="Path"/> through the exporter's middleware (flanneld has no endpoint routing), on that exact
    /// path as Go's ServeMux would: a path string alone would also match <c>/metrics/anything</c>.
    /// </summary>
    public static void Use(IApplicationBuilder app) =>
        app.UseOpenTelemetryPrometheusScrapingEndpoint(static context => context.Request.Path.Value == Path);
}
