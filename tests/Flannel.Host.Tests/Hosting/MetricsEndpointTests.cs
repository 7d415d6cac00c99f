using System.Net;
using Flannel.Agent.Health;
using Flannel.Agent.Metrics;
using Flannel.Host.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Tests.Hosting;

public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task Metrics_serves_the_Flannel_meter_in_the_Prometheus_text_format_next_to_the_health_endpoints()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using IHost app = BuildHost();
        await app.StartAsync(ct);

        // What the agent records (the metrics object is the one the host's container hands to every agent).
        FlannelMetrics metrics = app.Services.GetRequiredService<FlannelMetrics>();
        FlannelMetrics.AgentGauges gauges = metrics.RegisterAgent("node-1", TimeProvider.System);
        gauges.SetPeers(3);
        gauges.Ready(TimeSpan.FromMilliseconds(1250));
        metrics.RecordLeaseAcquired("node-1");
        metrics.RecordNetlinkError("node-1", "RTM_NEWNEIGH", "EINVAL");
        metrics.RecordApplyDuration("node-1", TimeSpan.FromMilliseconds(3));

        var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var client = new HttpClient { BaseAddress = baseAddress };
        using HttpResponseMessage response = await client.GetAsync(new Uri("/metrics", UriKind.Relative), ct);
        string text = await response.Content.ReadAsStringAsync(ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        string[] lines = text.Split('\n');
        Assert.Contains("# TYPE flannel_peers gauge", lines);
        Assert.Contains(lines, l => l.StartsWith("flannel_peers{", StringComparison.Ordinal) && l.Contains("agent=\"node-1\"", StringComparison.Ordinal) && l.EndsWith(" 3", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("flannel_time_to_ready_seconds{", StringComparison.Ordinal) && l.EndsWith(" 1.25", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("flannel_lease_acquisitions_total{", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("flannel_lease_renewals_total{", StringComparison.Ordinal) && l.EndsWith(" 0", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("flannel_netlink_errors_total{", StringComparison.Ordinal) && l.Contains("errno=\"EINVAL\"", StringComparison.Ordinal));
        Assert.Contains("# TYPE flannel_lease_events_apply_duration_seconds histogram", lines);
        Assert.Contains(lines, l => l.StartsWith("flannel_lease_events_apply_duration_seconds_bucket{", StringComparison.Ordinal)
            && l.Contains("le=\"0.005\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));

        // Only the Flannel meters: no Kestrel or runtime series leak in.
        Assert.DoesNotContain(lines, l => l.StartsWith("kestrel", StringComparison.Ordinal) || l.StartsWith("http_", StringComparison.Ordinal));

        // The health endpoints still answer next to it.
        using HttpResponseMessage healthz = await client.GetAsync(new Uri("/healthz", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, healthz.StatusCode);
        await app.StopAsync(ct);
    }

    [Fact]
    public async Task Series_past_the_cardinality_limit_add_up_in_one_overflow_series_and_no_count_is_lost()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using IHost app = BuildHost();
        await app.StartAsync(ct);
        FlannelMetrics metrics = app.Services.GetRequiredService<FlannelMetrics>();
        int distinct = MetricsEndpoint.CardinalityLimit + 50;
        for (int i = 0; i < distinct; i++)
        {
            metrics.RecordNetlinkError("node-1", "RTM_NEWROUTE", $"E{i}");
        }

        string[] series = [.. (await ScrapeAsync(app, ct)).Split('\n').Where(static l => l.StartsWith("flannel_netlink_errors_total{", StringComparison.Ordinal))];

        Assert.Equal(MetricsEndpoint.CardinalityLimit + 1, series.Length);
        string overflow = Assert.Single(series, static l => l.Contains("otel_metric_overflow=\"true\"", StringComparison.Ordinal));
        Assert.EndsWith($" {distinct - MetricsEndpoint.CardinalityLimit}", overflow, StringComparison.Ordinal);
        Assert.Equal(distinct, series.Sum(static l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)));
        await app.StopAsync(ct);
    }

    private static IHost BuildHost() => new HostBuilder()
        .ConfigureLogging(static logging => logging.ClearProviders())
        .ConfigureServices(static services =>
        {
            services.AddSingleton(new FlannelHealth());
            services.AddSingleton(sp => new FlannelMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        })
        .ConfigureWebHost(static web => FlanneldHost.ConfigureHealthServer(web, IPAddress.Loopback, 0, status: false))
        .Build();

    private static async Task<string> ScrapeAsync(IHost app, CancellationToken ct)
    {
        var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var client = new HttpClient { BaseAddress = baseAddress };
        return await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct);
    }
}
