using System.Net;
using System.Net.Sockets;
using System.Text;
using Flannel.Health;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Flannel.Core.Tests.Agent;

public sealed class HealthServerTests
{
    private static async Task<(int Status, string Body, string Head)> GetAsync(IPEndPoint endPoint, string path, string method = "GET")
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endPoint, TestContext.Current.CancellationToken);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n"), TestContext.Current.CancellationToken);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        string response = await reader.ReadToEndAsync(TestContext.Current.CancellationToken);
        int split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        string head = response[..split];
        int status = int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        return (status, response[(split + 4)..], head);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Healthz_and_readyz_answer_with_flannels_texts_and_readiness_changes()
    {
        var health = new FlannelHealth();
        AgentReadiness readiness = health.Register("node-1");
        await using var server = new HealthServer(health, Options.Create(new HealthServerOptions { Address = "127.0.0.1", Port = FreePort() }), NullLogger<HealthServer>.Instance);
        await server.StartAsync(TestContext.Current.CancellationToken);
        IPEndPoint endPoint = server.LocalEndPoint!;

        Assert.Equal((200, "flanneld is running"), ((await GetAsync(endPoint, "/healthz")).Status, (await GetAsync(endPoint, "/healthz")).Body));
        var notReady = await GetAsync(endPoint, "/readyz");
        Assert.Equal(503, notReady.Status);
        Assert.Equal("flanneld is not ready yet", notReady.Body);
        Assert.Contains("X-Flannel-Not-Ready: starting", notReady.Head, StringComparison.Ordinal);

        readiness.MarkStarted();
        var ready = await GetAsync(endPoint, "/readyz");
        Assert.Equal((200, "flanneld is ready"), (ready.Status, ready.Body));

        readiness.SetWatchProblem("the lease watch failed: etcd down");
        Assert.Equal(503, (await GetAsync(endPoint, "/readyz")).Status);

        Assert.Equal(404, (await GetAsync(endPoint, "/metrics")).Status);
        Assert.Equal(405, (await GetAsync(endPoint, "/healthz", "POST")).Status);
        await server.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Port_zero_disables_the_endpoint()
    {
        await using var server = new HealthServer(new FlannelHealth(), Options.Create(new HealthServerOptions()), NullLogger<HealthServer>.Instance);
        await server.StartAsync(TestContext.Current.CancellationToken);
        Assert.Null(server.LocalEndPoint);
    }

    [Fact]
    public void A_process_with_several_agents_is_ready_only_when_all_are()
    {
        var health = new FlannelHealth();
        Assert.False(health.IsReady);
        AgentReadiness one = health.Register("node-1");
        AgentReadiness two = health.Register("node-2");
        one.MarkStarted();
        Assert.Equal("node-2: starting", health.NotReadyReason);
        two.MarkStarted();
        Assert.True(health.IsReady);
    }
}

public sealed class AgentReadinessTests
{
    [Fact]
    public void A_store_problem_explains_the_startup_step_it_blocks()
    {
        var readiness = new Flannel.Health.AgentReadiness("n1");
        string? storeProblem = "node \"n1\" has no podCIDR yet";
        readiness.SetStoreStatus(() => storeProblem);
        readiness.SetPhase("acquiring a subnet lease");
        Assert.Equal("acquiring a subnet lease: node \"n1\" has no podCIDR yet", readiness.NotReadyReason);
        storeProblem = null;
        Assert.Equal("acquiring a subnet lease", readiness.NotReadyReason);
        readiness.MarkStarted();
        Assert.True(readiness.IsReady);
        readiness.SetWatchProblem("the lease watch failed: boom");
        Assert.Equal("the lease watch failed: boom", readiness.NotReadyReason);
    }
}
