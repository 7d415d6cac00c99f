using System.Net;
using Flannel.Agent.Probing;
using Flannel.Agent.Status;
using Flannel.Backends;
using Flannel.Subnets;

namespace Flannel.Agent.Tests;

/// <summary>The agent's fabric status: its lease and backend, the remote leases from the watch, their kernel state from the backend and their probe results.</summary>
public sealed class FlannelAgentStatusTests
{
    private static Lease Remote(string subnet, string publicIP) => new()
    {
        Subnet = IPNetwork.Parse(subnet),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP), BackendType = "fake", BackendData = "{\"Id\":2}" },
        Expiration = DateTimeOffset.UnixEpoch.AddDays(1),
    };

    [Fact]
    public async Task Status_shows_the_node_each_peer_its_kernel_state_and_both_paths_and_names_an_overlay_only_failure()
    {
        string socket = Path.Combine(Path.GetTempPath(), $"flannel-status-{Guid.NewGuid():N}.sock");
        var echo = new ScriptedEcho();
        echo.Broken.Add(IPAddress.Parse("10.244.3.0")); // peer b: the overlay fails, its underlay answers
        await using var h = new AgentHarness(
            o =>
            {
                o.StatusSocket = socket;
                o.Probes.Interval = TimeSpan.FromSeconds(10);
            },
            echo: echo);
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Lease a = Remote("10.244.2.0/24", "198.18.0.3");
        Lease b = Remote("10.244.3.0/24", "198.18.0.4");
        h.Backend.Network.KernelStates[a.Key] = new PeerKernelStatus(PeerKernelState.Programmed);
        h.Backend.Network.KernelStates[b.Key] = new PeerKernelStatus(PeerKernelState.Drifted, "1 of 3 objects differed: fixed fdb");
        h.Store.Publish(LeaseWatchResult.FromSnapshot([h.Agent.OwnLease!, a, b]));

        await h.WaitUntilAsync(
            () => h.Agent.GetStatus().Summary is { Reachable: 1, OverlayOnlyFailures: 1 },
            step: TimeSpan.FromMilliseconds(500),
            what: "one reachable peer and one overlay-only failure");

        FabricStatus status = h.Agent.GetStatus();
        Assert.Equal("node-1", status.Node.Name);
        Assert.True(status.Node.Ready);
        Assert.Equal("fake", status.Node.Backend);
        Assert.Equal("fake.1", status.Node.Device);
        Assert.Equal(1450, status.Node.Mtu);
        Assert.Equal("10.244.0.0/16", status.Node.Network);
        Assert.Equal(("eth0", "198.18.0.2"), (status.Node.Interface!.Name, status.Node.Interface.Address));
        Assert.Equal("10.244.7.0-24", status.Node.Lease!.Key);
        Assert.True(status.Node.Store.Healthy);
        Assert.Equal(10, status.Probes!.IntervalSeconds);
        Assert.Equal([a.Key, b.Key], status.Peers.Select(p => p.Lease.Key));

        PeerStatus peerA = status.Peers[0];
        Assert.Equal(PeerHealth.Reachable, peerA.Health);
        Assert.Equal(PeerKernelState.Programmed, peerA.Kernel.State);
        Assert.Equal("198.18.0.3", peerA.Lease.PublicIP);
        Assert.Equal(2, peerA.Lease.BackendData!.Value.GetProperty("Id").GetInt32());
        Assert.Equal(("10.244.2.0", "10.244.7.0"), (peerA.Overlay!.Target, peerA.Overlay.Source));
        Assert.Equal(("198.18.0.3", "198.18.0.2"), (peerA.Underlay!.Target, peerA.Underlay.Source));

        PeerStatus peerB = status.Peers[1];
        Assert.Equal(PeerHealth.OverlayOnlyFailure, peerB.Health);
        Assert.Equal(Reachability.Unreachable, peerB.Overlay!.State);
        Assert.Equal(Reachability.Reachable, peerB.Underlay!.State);
        Assert.Equal(PeerKernelState.Drifted, peerB.Kernel.State);
        Assert.Equal("1/2 peers reachable, 1 overlay-only failure, 1 with missing or drifted kernel objects", status.Summary.Text);

        // The same document on the unix socket.
        FabricStatus served = await StatusSocketClient.GetStatusAsync(socket, TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        Assert.Equal(status.Summary.Text, served.Summary.Text);
        Assert.Equal(PeerKernelState.Drifted, served.Peers[1].Kernel.State);

        // A removed lease leaves the status and the probes.
        h.Store.Publish(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Removed, b)]));
        await h.WaitUntilAsync(() => h.Agent.GetStatus().Peers.Count == 1, what: "the removal in the status");
    }

    [Fact]
    public async Task Without_a_prober_the_status_has_no_probe_results_and_peers_are_unknown()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        h.Store.Publish(LeaseWatchResult.FromSnapshot([h.Agent.OwnLease!, Remote("10.244.2.0/24", "198.18.0.3")]));
        await h.WaitUntilAsync(() => h.Agent.GetStatus().Peers.Count == 1, what: "the peer in the status");

        FabricStatus status = h.Agent.GetStatus();
        Assert.Null(status.Probes);
        Assert.Null(status.Peers[0].Overlay);
        Assert.Equal(PeerHealth.Unknown, status.Peers[0].Health);
        Assert.Equal("0/1 peers reachable, 1 not probed yet", status.Summary.Text);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(10, 0)]
    [InlineData(10, 10)]
    public void Probe_settings_are_validated_with_the_flag_named(int intervalSeconds, int timeoutSeconds)
    {
        var options = new FlannelAgentOptions();
        options.Probes.Interval = TimeSpan.FromSeconds(intervalSeconds);
        options.Probes.Timeout = TimeSpan.FromSeconds(timeoutSeconds);
        Microsoft.Extensions.Options.ValidateOptionsResult result = new FlannelAgentOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains("--probe-", result.FailureMessage, StringComparison.Ordinal);
        options.Probes.Enabled = false;
        Assert.True(new FlannelAgentOptionsValidator().Validate(null, options).Succeeded);
    }

    /// <summary>Answers at once: a reply, or a timeout for the destinations in <see cref="Broken"/>.</summary>
    private sealed class ScriptedEcho : IEchoProber
    {
        public HashSet<IPAddress> Broken { get; } = [];

        public ValueTask<EchoResult> EchoAsync(IPAddress destination, IPAddress? source, TimeSpan timeout, CancellationToken cancellationToken) =>
            ValueTask.FromResult(Broken.Contains(destination) ? EchoResult.TimedOut : EchoResult.Reply(TimeSpan.FromMilliseconds(0.4)));
    }
}
