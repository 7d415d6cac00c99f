using System.Net;
using Flannel.Agent;
using Flannel.Subnets;

namespace Flannel.Agent.Tests;

public sealed class FlannelAgentTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    private static Lease Remote(string subnet, string publicIP, string data = "{\"Id\":2}") => new()
    {
        Subnet = IPNetwork.Parse(subnet),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP), BackendType = "fake", BackendData = data },
        Expiration = DateTimeOffset.UnixEpoch.AddDays(1),
    };

    [Fact]
    public async Task Startup_follows_flanneld_order_and_becomes_ready_only_after_subnet_env()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await h.WaitUntilAsync(() => h.Log.Calls.Contains("watch") && h.Log.Calls.Contains("keep"), what: "watch and keep");

        // flanneld's order, except that subnet.env comes right after the backend's own-lease configuration and the
        // backend then runs (watches and programs peers) while the rules are installed.
        string[] calls = [.. h.Log.Calls];
        Assert.Equal(["config", "hints", "register", "acquire", "configure-lease"], calls[..5]);
        Assert.Subset(calls[5..].ToHashSet(), new HashSet<string> { "run", "traffic", "watch", "keep" });
        Assert.True(Array.IndexOf(calls, "run") < Array.IndexOf(calls, "watch"), string.Join(", ", calls));
        Assert.True(Array.IndexOf(calls, "traffic") < Array.IndexOf(calls, "keep"), string.Join(", ", calls));
        Assert.True(h.Agent.Readiness.IsReady);
        Assert.Equal(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
            await File.ReadAllTextAsync(h.SubnetFile, TestContext.Current.CancellationToken));
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(Convert.ToInt32("644", 8), (int)File.GetUnixFileMode(h.SubnetFile));
        }
        Assert.Equal("eth0", h.Backend.Context!.ExternalInterface.Name);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), h.Backend.Context.ExternalInterface.PublicIP);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), h.Store.HintsAskedFor);
    }

    [Fact]
    public async Task Snapshot_programmed_completes_when_the_backend_asks_for_the_batch_after_the_first_snapshot()
    {
        await using var h = new AgentHarness();
        var programmed = new TaskCompletionSource();
        h.Backend.Network.ProgramGate = programmed.Task;
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await h.WaitUntilAsync(() => h.Store.WatchStarts == 1, what: "the lease watch");
        Assert.False(h.Agent.SnapshotProgrammed.IsCompleted);

        h.Store.Publish(LeaseWatchResult.FromSnapshot([Remote("10.244.9.0/24", "198.18.0.9")]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "the snapshot handed to the backend");

        // Handed over is not programmed: the backend is still at it.
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(h.Agent.SnapshotProgrammed.IsCompleted);

        programmed.SetResult();
        await h.Agent.SnapshotProgrammed.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.True(h.Agent.SnapshotProgrammed.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Snapshot_programmed_is_cancelled_when_the_agent_stops_before_a_snapshot_arrives()
    {
        var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await h.DisposeAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => h.Agent.SnapshotProgrammed.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Subnet_env_is_written_and_peers_programmed_while_the_rules_are_still_being_installed_and_ready_waits_for_the_rules()
    {
        await using var h = new AgentHarness();
        var rulesInstalled = new TaskCompletionSource();
        h.Traffic!.StartupGate = rulesInstalled.Task;
        await h.StartAsync();
        await h.WaitUntilAsync(() => h.Store.WatchStarts == 1, what: "the lease watch, before the rules are in");
        Assert.Equal(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
            await File.ReadAllTextAsync(h.SubnetFile, TestContext.Current.CancellationToken));
        h.Store.Publish(LeaseWatchResult.FromSnapshot([Remote("10.244.9.0/24", "198.18.0.9")]));

        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "the snapshot programmed");
        Assert.Equal("10.244.9.0/24", h.Backend.Network.Batches[0].Single().Lease.Subnet.ToString());
        Assert.False(h.Agent.Readiness.IsReady);
        Assert.False(h.Agent.Started.IsCompleted);

        rulesInstalled.SetResult();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.True(File.Exists(h.SubnetFile));
        Assert.True(h.Agent.Readiness.IsReady);
    }

    [Fact]
    public async Task Rules_that_cannot_be_installed_fail_the_agent_and_stop_the_backend_it_already_started()
    {
        await using var h = new AgentHarness();
        h.Traffic!.StartupGate = Task.FromException(new InvalidOperationException("iptables-restore: permission denied"));
        await h.StartAsync();

        await h.WaitUntilAsync(() => h.Health.Failures.Count == 1, what: "the agent's failure");
        await h.WaitUntilAsync(() => h.Backend.Network.RunEnded, what: "the backend stopped");
        Assert.Contains("permission denied", h.Health.Failures[0].Error.Message, StringComparison.Ordinal);
        Assert.False(h.Agent.Readiness.IsReady);
    }

    [Fact]
    public async Task Not_ready_while_the_config_is_unavailable_then_retries_with_backoff()
    {
        await using var h = new AgentHarness();
        h.Store.ConfigFailuresLeft = 3;
        await h.StartAsync();
        // The store logs the read before it throws, so wait for the failure to reach readiness, not for the call.
        await h.WaitUntilAsync(
            () => h.Agent.Readiness.NotReadyReason?.Contains("etcd unavailable", StringComparison.Ordinal) == true,
            what: "the first config failure in the readiness reason");
        Assert.Equal(1, h.Log.Calls.Count(c => c == "config"));
        Assert.False(h.Agent.Readiness.IsReady);
        Assert.False(File.Exists(h.SubnetFile));

        // Backoff doubles from 1 s: 1 s, 2 s, 4 s.
        await h.WaitUntilAsync(() => h.Agent.Started.IsCompleted, step: Second, what: "startup after retries");
        Assert.Equal(4, h.Log.Calls.Count(c => c == "config"));
        Assert.True(h.Agent.Readiness.IsReady);
    }

    [Fact]
    public async Task Previous_subnet_env_is_offered_to_the_store_and_passed_to_traffic_rules()
    {
        await using var h = new AgentHarness();
        await File.WriteAllTextAsync(h.SubnetFile, "FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", TestContext.Current.CancellationToken);
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        Assert.Equal(IPNetwork.Parse("10.244.9.0/24"), h.Store.LastRequest!.PreviousSubnet);
        Assert.True(h.Traffic!.Requests.TryPeek(out TrafficRulesRequest? first));
        Assert.Equal(IPNetwork.Parse("10.0.0.0/8"), first.PreviousNetwork);
        Assert.Equal(IPNetwork.Parse("10.244.9.0/24"), first.PreviousSubnet);
        Assert.Equal(IPNetwork.Parse("10.244.7.0/24"), first.Lease.Subnet);
        Assert.False(first.IsResync);
    }

    [Fact]
    public async Task Remote_leases_reach_the_backend_without_the_own_lease_and_removals_carry_cached_attributes()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Lease own = h.Agent.OwnLease!;
        Lease peer = Remote("10.244.2.0/24", "198.18.0.3");
        h.Store.Publish(LeaseWatchResult.FromSnapshot([own, peer]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "snapshot batch");
        LeaseEvent added = Assert.Single(h.Backend.Network.Batches[0]);
        Assert.Equal(LeaseEventType.Added, added.Type);
        Assert.Equal(peer, added.Lease);

        // A renewal re-delivers the unchanged lease: nothing to program. A removal without attributes carries the cached ones.
        h.Store.Publish(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Added, peer with { Expiration = DateTimeOffset.UnixEpoch.AddDays(2) })]));
        h.Store.Publish(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Removed, new Lease { Subnet = peer.Subnet, Attributes = new LeaseAttributes() })]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 2, what: "removal batch");
        LeaseEvent removed = Assert.Single(h.Backend.Network.Batches[1]);
        Assert.Equal(LeaseEventType.Removed, removed.Type);
        Assert.Equal("198.18.0.3", removed.Lease.Attributes.PublicIP.ToString());
    }

    [Fact]
    public async Task Hostile_remote_leases_never_reach_the_backend_and_each_is_counted_once_by_rule()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Lease own = h.Agent.OwnLease!;
        Lease peer = Remote("10.244.2.0/24", "198.18.0.3");
        Lease outside = Remote("192.168.7.0/24", "198.18.0.66");
        Lease hijack = Remote("10.244.2.0/25", "198.18.0.99");
        Lease selfPointing = Remote("10.244.8.0/24", own.Attributes.PublicIP.ToString());
        Lease overlapsOwn = Remote($"{own.Subnet!.Value.BaseAddress}/25", "198.18.0.98");

        h.Store.Publish(LeaseWatchResult.FromSnapshot([own, peer, outside, hijack, selfPointing, overlapsOwn]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "snapshot batch");

        Assert.Equal([new LeaseEvent(LeaseEventType.Added, peer)], h.Backend.Network.Batches[0]);
        Assert.Equal(1, h.Meters.Sum("flannel.leases.rejected", "rule", "outside-network"));
        Assert.Equal(2, h.Meters.Sum("flannel.leases.rejected", "rule", "overlap"));
        Assert.Equal(1, h.Meters.Sum("flannel.leases.rejected", "rule", "own-public-ip"));

        // Renewals of the rejected leases are not counted (or logged) again; a good lease after them still arrives.
        Lease later = Remote("10.244.3.0/24", "198.18.0.4");
        h.Store.Publish(LeaseWatchResult.FromEvents([new LeaseEvent(LeaseEventType.Added, outside with { Revision = 9 }), new LeaseEvent(LeaseEventType.Added, hijack with { Revision = 9 }), new LeaseEvent(LeaseEventType.Added, later)]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 2, what: "the next batch");
        Assert.Equal([new LeaseEvent(LeaseEventType.Added, later)], h.Backend.Network.Batches[1]);
        Assert.Equal(4, h.Meters.Sum("flannel.leases.rejected"));
    }

    [Fact]
    public async Task Readiness_drops_while_the_watch_is_down_and_the_resumed_snapshot_removes_leases_deleted_meanwhile()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Lease a = Remote("10.244.2.0/24", "198.18.0.3");
        Lease b = Remote("10.244.3.0/24", "198.18.0.4");
        h.Store.Publish(LeaseWatchResult.FromSnapshot([a, b]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "snapshot");

        h.Store.FailWatch(new IOException("connection reset"));
        await h.WaitUntilAsync(() => !h.Agent.Readiness.IsReady, what: "readiness to drop");
        Assert.Contains("connection reset", h.Agent.Readiness.NotReadyReason, StringComparison.Ordinal);

        await h.WaitUntilAsync(() => h.Store.WatchStarts == 2, step: Second, what: "watch restart");
        h.Store.Publish(LeaseWatchResult.FromSnapshot([a]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 2, what: "resumed snapshot");
        LeaseEvent removed = Assert.Single(h.Backend.Network.Batches[1]);
        Assert.Equal(LeaseEventType.Removed, removed.Type);
        Assert.Equal(b.Subnet, removed.Lease.Subnet);
        Assert.True(h.Agent.Readiness.IsReady);
        Assert.False(h.Backend.Network.RunEnded);
    }

    [Fact]
    public async Task Store_reported_problems_make_the_agent_not_ready()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.True(h.Health.IsReady);
        h.Store.NotReadyReason = "node \"n1\" has no podCIDR yet";
        Assert.False(h.Health.IsReady);
        Assert.Equal("node \"n1\" has no podCIDR yet", h.Health.NotReadyReason);
        h.Store.NotReadyReason = null;
        Assert.True(h.Health.IsReady);
    }

    [Fact]
    public async Task A_changed_own_lease_reprograms_the_device_rules_and_subnet_env()
    {
        await using var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await h.WaitUntilAsync(() => h.Log.Calls.Contains("keep"), what: "keep lease");
        Lease old = h.Agent.OwnLease!;

        await h.Store.KeepChannel.Writer.WriteAsync(old with { Expiration = old.Expiration!.Value.AddDays(1) }, TestContext.Current.CancellationToken);
        await h.WaitUntilAsync(() => h.Agent.OwnLease!.Expiration == old.Expiration!.Value.AddDays(1), what: "renewal");
        Assert.Single(h.Backend.Network.ConfiguredLeases);

        Lease moved = old with { Subnet = IPNetwork.Parse("10.244.42.0/24") };
        await h.Store.KeepChannel.Writer.WriteAsync(moved, TestContext.Current.CancellationToken);
        await h.WaitUntilAsync(() => h.Backend.Network.ConfiguredLeases.Count == 2, what: "reconfiguration");
        await h.WaitUntilAsync(() => File.ReadAllText(h.SubnetFile).Contains("10.244.42.1/24", StringComparison.Ordinal), what: "subnet.env rewrite");
        Assert.Equal(moved.Subnet, h.Backend.Network.ConfiguredLeases[1].Subnet);
        TrafficRulesRequest rules = h.Traffic!.Requests.Last(r => !r.IsResync);
        Assert.Equal(moved.Subnet, rules.Lease.Subnet);
        Assert.Equal(old.Subnet, rules.PreviousSubnet);

        // Later watch events for the new own subnet are not peers; our old subnet, now another node's, is.
        Lease taken = old with { Attributes = old.Attributes with { PublicIP = IPAddress.Parse("198.18.0.77") } };
        h.Store.Publish(LeaseWatchResult.FromSnapshot([moved, taken]));
        await h.WaitUntilAsync(() => h.Backend.Network.Batches.Count == 1, what: "snapshot");
        Assert.Equal(old.Subnet, Assert.Single(h.Backend.Network.Batches[0]).Lease.Subnet);
    }

    [Fact]
    public async Task Traffic_rules_and_blackhole_route_are_resynced_every_period()
    {
        await using var h = new AgentHarness(o => { o.IpBlackholeRoute = true; o.IptablesResync = TimeSpan.FromSeconds(5); });
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        TrafficRulesRequest first = Assert.Single(h.Traffic!.Requests);
        Assert.True(first.BlackholeRoute);
        Assert.Equal(IPNetwork.Parse("10.244.7.0/24"), first.Lease.Subnet);

        // One implementation: the traffic manager's add-if-absent route, never a netlink replace by the agent, which
        // would overwrite cni0's route for the same prefix.
        Assert.Empty(h.Netlink.ReplacedRoutes);

        await h.WaitUntilAsync(() => h.Traffic!.Requests.Count(r => r.IsResync) >= 2, step: Second, what: "two resyncs");
        Assert.All(h.Traffic!.Requests, r => Assert.True(r.BlackholeRoute));
        Assert.Empty(h.Netlink.ReplacedRoutes);
    }

    [Fact]
    public async Task Stopping_leaves_the_lease_and_subnet_env_in_place()
    {
        var h = new AgentHarness();
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        await h.Agent.StopAsync(CancellationToken.None);
        Assert.False(h.Store.Revoked);
        Assert.True(File.Exists(h.SubnetFile));
        Assert.False(h.Agent.Readiness.IsReady);
        Assert.Empty(h.Health.Failures);
        await h.DisposeAsync();
    }

    [Fact]
    public async Task An_unknown_backend_type_fails_the_agent_with_the_supported_types()
    {
        await using var h = new AgentHarness();
        h.Store.Config = h.Store.Config with { BackendType = "udp" };
        await h.StartAsync();
        await h.WaitUntilAsync(() => h.Health.Failures.Count == 1, what: "failure");
        Exception error = h.Health.Failures[0].Error;
        Assert.Equal(
            "unknown backend type: udp (Backend.Type in the network config; udp is a flannel backend that Flannel.NET does not implement); this agent supports: fake",
            error.Message);
        Assert.False(h.Health.IsReady);
        Assert.False(File.Exists(h.SubnetFile));
    }

    [Fact]
    public async Task Node_hints_override_the_public_ip()
    {
        await using var h = new AgentHarness();
        h.Netlink.AddAddress(2, "198.18.0.50/24");
        h.Store.Hints = new NodeHints { PublicIP = IPAddress.Parse("198.18.0.50") };
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.Equal(IPAddress.Parse("198.18.0.50"), h.Backend.Context!.ExternalInterface.PublicIP);
        Assert.Equal(IPAddress.Parse("198.18.0.50"), h.Store.LastRequest!.Attributes.PublicIP);
    }

    [Fact]
    public async Task Without_a_traffic_rule_manager_the_agent_still_starts()
    {
        await using var h = new AgentHarness(withTrafficRules: false);
        await h.StartAsync();
        await h.Agent.Started.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.True(h.Agent.Readiness.IsReady);
    }
}
