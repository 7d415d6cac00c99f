using System.Net;
using Flannel.Agent.Metrics;
using Flannel.Reconciliation;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace Flannel.Host.Hosting;

/// <summary>
/// <c>/metrics</c> on the health port: the agent's <c>Flannel</c> meter and the backends' <c>Flannel.Backends</c>
/// meter in the Prometheus text format, through OpenTelemetry's Prometheus exporter and its own HttpListener. The
/// libraries only emit System.Diagnostics.Metrics; choosing this exporter is the host's decision, as it is for any
/// embedder.
/// </summary>
/// <remarks>
/// Only these two meters are exported (no runtime or HTTP client meters), so a scrape stays small and its series do
/// not grow with the number of peers. docs/metrics.md lists every series. The exporter's listener takes the
/// <c>/metrics/</c> prefix of the <see cref="HealthServer"/>'s address and port (one socket, see there).
/// </remarks>
internal static class MetricsEndpoint
{
    /// <summary>The scrape path, as Prometheus expects by default.</summary>
    public const string Path = "/metrics";

    /// <summary>Registers the meter provider with the Prometheus exporter listening on <paramref name="address"/>:<paramref name="port"/>.</summary>
    public static void AddServices(IServiceCollection services, IPAddress address, int port) =>
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(FlannelMetrics.MeterName, BackendMetrics.MeterName)
            .AddPrometheusHttpListener(exporter =>
            {
                exporter.Port = port;
                exporter.ScrapeEndpointPath = Path;

                // The exporter builds its prefix with UriBuilder, which refuses HttpListener's "+" (every address):
                // give it the health server's prefix host here instead.
                exporter.ConfigureHttpListener = (_, listener) =>
                {
                    listener.Prefixes.Clear();
                    listener.Prefixes.Add($"http://{HealthServer.PrefixHost(address)}:{port}{Path}/");
                };

                // Every scrape sees current values (the default caches a response for 300 ms).
                exporter.ScrapeResponseCacheDurationMilliseconds = 0;
            }));
}
