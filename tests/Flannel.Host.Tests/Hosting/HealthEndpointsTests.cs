using System.Net;
using Flannel.Agent.Health;
using Flannel.Host.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Tests.Hosting;

public sealed class HealthEndpointsTests
{
    [Fact]
    public async Task Healthz_and_readyz_answer_with_flannels_texts_and_follow_readiness()
    {
        var health = new FlannelHealth();
        AgentReadiness readiness = health.Register("node-1");
        using IHost app = Build(health);
        await app.StartAsync(TestContext.Current.CancellationToken);
        var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var client = new HttpClient { BaseAddress = baseAddress };
        CancellationToken ct = TestContext.Current.CancellationToken;

        using (HttpResponseMessage healthz = await client.GetAsync(new Uri("/healthz", UriKind.Relative), ct))
        {
            Assert.Equal((HttpStatusCode.OK, "flanneld is running"), (healthz.StatusCode, await healthz.Content.ReadAsStringAsync(ct)));
            Assert.Equal("text/plain", healthz.Content.Headers.ContentType!.MediaType);
        }

        using (HttpResponseMessage notReady = await client.GetAsync(new Uri("/readyz", UriKind.Relative), ct))
        {
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "flanneld is not ready yet"), (notReady.StatusCode, await notReady.Content.ReadAsStringAsync(ct)));
            Assert.Equal("starting", Assert.Single(notReady.Headers.GetValues(HealthEndpoints.NotReadyHeader)));
        }

        readiness.MarkStarted();
        using (HttpResponseMessage ready = await client.GetAsync(new Uri("/readyz", UriKind.Relative), ct))
        {
            Assert.Equal((HttpStatusCode.OK, "flanneld is ready"), (ready.StatusCode, await ready.Content.ReadAsStringAsync(ct)));
            Assert.False(ready.Headers.Contains(HealthEndpoints.NotReadyHeader));
        }

        readiness.SetWatchProblem("the lease watch failed: etcd “down”");
        using (HttpResponseMessage down = await client.GetAsync(new Uri("/readyz", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal("the lease watch failed: etcd ?down?", Assert.Single(down.Headers.GetValues(HealthEndpoints.NotReadyHeader)));
        }

        // Go's ServeMux: exact, case-sensitive paths; /status only with --status-http.
        foreach (string path in new[] { "/debug", "/healthz/", "/HEALTHZ", "/status", "/metrics/x" })
        {
            using HttpResponseMessage missing = await client.GetAsync(new Uri(path, UriKind.Relative), ct);
            Assert.Equal((HttpStatusCode.NotFound, "404 page not found\n"), (missing.StatusCode, await missing.Content.ReadAsStringAsync(ct)));
        }

        // Go's handlers answer any method.
        using HttpResponseMessage post = await client.PostAsync(new Uri("/healthz", UriKind.Relative), null, ct);
        Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        await app.StopAsync(ct);
    }

    [Fact]
    public async Task Status_serves_the_agents_fabric_status_as_json_when_mapped()
    {
        var health = new FlannelHealth();
        using IHost app = Build(health, new FixedStatus());
        await app.StartAsync(TestContext.Current.CancellationToken);
        var baseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var client = new HttpClient { BaseAddress = baseAddress };
        CancellationToken ct = TestContext.Current.CancellationToken;

        using HttpResponseMessage response = await client.GetAsync(new Uri("/status", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        using System.Text.Json.JsonDocument document = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("node-1", document.RootElement.GetProperty("node").GetProperty("name").GetString());
        Assert.Equal("0/0 peers reachable", document.RootElement.GetProperty("summary").GetProperty("text").GetString());
        await app.StopAsync(ct);
    }

    private sealed class FixedStatus : Flannel.Agent.Status.IFabricStatus
    {
        public string Name => "node-1";

        public Flannel.Agent.Status.FabricStatus GetStatus() => new()
        {
            GeneratedAt = DateTimeOffset.UnixEpoch,
            Node = new Flannel.Agent.Status.NodeStatus { Name = Name, Store = new Flannel.Agent.Status.StoreStatus(true, null) },
            Peers = [],
            Summary = Flannel.Agent.Status.FabricSummary.From([]),
        };
    }

    private static IHost Build(FlannelHealth health, Flannel.Agent.Status.IFabricStatus? status = null) =>
        new HostBuilder()
            .ConfigureLogging(static logging => logging.ClearProviders())
            .ConfigureServices(services =>
            {
                services.AddSingleton(health);
                if (status is not null)
                {
                    services.AddSingleton(status);
                }
            })
            .ConfigureWebHost(web => FlanneldHost.ConfigureHealthServer(web, IPAddress.Loopback, 0, status: status is not null))
            .Build();
}
