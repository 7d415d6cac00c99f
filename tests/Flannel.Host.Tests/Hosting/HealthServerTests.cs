using System.Net;
using Flannel.Agent.Health;
using Flannel.Host.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flannel.Host.Tests.Hosting;

public sealed class HealthServerTests
{
    [Fact]
    public async Task Healthz_and_readyz_answer_with_flannels_texts_and_follow_readiness()
    {
        var health = new FlannelHealth();
        AgentReadiness readiness = health.Register("node-1");
        (IHost app, Uri baseAddress) = Build(health);
        using IHost disposeApp = app;
        await app.StartAsync(TestContext.Current.CancellationToken);
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
            Assert.Equal("starting", Assert.Single(notReady.Headers.GetValues(HealthServer.NotReadyHeader)));
        }

        readiness.MarkStarted();
        using (HttpResponseMessage ready = await client.GetAsync(new Uri("/readyz", UriKind.Relative), ct))
        {
            Assert.Equal((HttpStatusCode.OK, "flanneld is ready"), (ready.StatusCode, await ready.Content.ReadAsStringAsync(ct)));
            Assert.False(ready.Headers.Contains(HealthServer.NotReadyHeader));
        }

        readiness.SetWatchProblem("the lease watch failed: etcd “down”");
        using (HttpResponseMessage down = await client.GetAsync(new Uri("/readyz", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal("the lease watch failed: etcd ?down?", Assert.Single(down.Headers.GetValues(HealthServer.NotReadyHeader)));
        }

        using (HttpResponseMessage missing = await client.GetAsync(new Uri("/debug", UriKind.Relative), ct))
        {
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
        (IHost app, Uri baseAddress) = Build(health, new FixedStatus());
        using IHost disposeApp = app;
        await app.StartAsync(TestContext.Current.CancellationToken);
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

    [Fact]
    public async Task On_every_address_the_health_endpoints_and_metrics_share_the_port_and_accept_any_host_name()
    {
        // --healthz-ip's default 0.0.0.0 (kube-flannel.yml): both listeners take the "+" prefix of one socket.
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(new FlannelHealth());
        int port = FreePort();
        FlanneldHost.AddHealthServer(builder.Services, IPAddress.Any, port, statusHttp: false);
        using IHost app = builder.Build();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await app.StartAsync(ct);

        using var client = new HttpClient();
        foreach (string host in new[] { "127.0.0.1", "localhost" })
        {
            using HttpResponseMessage healthz = await client.GetAsync(new Uri($"http://{host}:{port}/healthz"), ct);
            Assert.Equal((HttpStatusCode.OK, "flanneld is running"), (healthz.StatusCode, await healthz.Content.ReadAsStringAsync(ct)));
            using HttpResponseMessage metrics = await client.GetAsync(new Uri($"http://{host}:{port}/metrics"), ct);
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.Contains("target_info", await metrics.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        }

        await app.StopAsync(ct);
    }

    [Fact]
    public async Task A_port_in_use_fails_the_start_with_the_address()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(new FlannelHealth());
        FlanneldHost.AddHealthServer(builder.Services, IPAddress.Loopback, port, statusHttp: false);
        using IHost app = builder.Build();

        InvalidOperationException e = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync(TestContext.Current.CancellationToken));

        Flannel.Host.Cli.FlanneldOptions options = Flannel.Host.Cli.FlanneldCommandLine.Parse(["--healthz-ip=127.0.0.1", $"--healthz-port={port}"], new Dictionary<string, string>());
        Assert.Equal($"cannot serve healthz on 127.0.0.1:{port}: Address already in use", FlanneldHost.StartFailureText(e, options));
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

    /// <summary>The host's health server (and /metrics) on a free loopback port, as flanneld builds it.</summary>
    internal static (IHost Host, Uri BaseAddress) Build(FlannelHealth health, Flannel.Agent.Status.IFabricStatus? status = null, Action<IServiceCollection>? services = null)
    {
        HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(health);
        if (status is not null)
        {
            builder.Services.AddSingleton(status);
        }

        services?.Invoke(builder.Services);
        int port = FreePort();
        FlanneldHost.AddHealthServer(builder.Services, IPAddress.Loopback, port, statusHttp: status is not null);
        return (builder.Build(), new Uri($"http://127.0.0.1:{port}/"));
    }

    /// <summary>A free TCP port on loopback (HttpListener cannot listen on port 0).</summary>
    internal static int FreePort()
    {
        using var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
