using System.Net;
using System.Threading.Channels;
using Flannel.Backends;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Flannel.Testing;

namespace Flannel.Reconciliation.Tests;

/// <summary>
/// The engine reconciling backend-defined state (tunnel peers applied by the backend's own applier) together with
/// rtnetlink routes, as a WireGuard backend does: one model, plan order across both, per-peer withdraw, drift repair.
/// </summary>
public sealed class BackendStateTests
{
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(10);

    private static Lease PeerLease(int peer, string? publicIP = null) => new()
    {
        Subnet = IPNetwork.Parse($"10.244.{peer}.0/24"),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP ?? $"198.18.0.{peer}"), BackendType = "tunnel" },
    };

    [Fact]
    public async Task Peers_are_applied_by_the_backend_applier_before_their_routes_and_removed_after_them()
    {
        await using var node = await Node.StartAsync();
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(2)));
        await node.WaitAsync(() => node.HasRoute(2));
        Assert.Equal("198.18.0.2:51820", node.Applier.Peers["pk-10.244.2.0"].ToString());
        Assert.Equal(["added test-peer (route present: False)"], node.Applier.Log);

        // The endpoint moves: the peer is fixed in place.
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(2, publicIP: "198.18.0.22")));
        await node.WaitAsync(() => node.Applier.Peers["pk-10.244.2.0"].Address.Equals(IPAddress.Parse("198.18.0.22")));

        await node.SendAsync(new LeaseEvent(LeaseEventType.Removed, PeerLease(2, publicIP: "198.18.0.22")));
        await node.WaitAsync(() => node.Applier.Peers.Count == 0);
        Assert.False(node.HasRoute(2));
        Assert.Equal(["added test-peer (route present: False)", "fixed test-peer (route present: True)", "deleted test-peer (route present: False)"], node.Applier.Log);
    }

    [Fact]
    public async Task A_peer_the_applier_refuses_is_withdrawn_whole_and_the_others_are_programmed()
    {
        await using var node = await Node.StartAsync();
        node.Applier.Refuse = "pk-10.244.3.0";
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(2)), new LeaseEvent(LeaseEventType.Added, PeerLease(3)));
        await node.WaitAsync(() => node.HasRoute(2));
        await node.WaitAsync(() => node.Network.ProcessedEventBatches >= 2); // the snapshot, then this batch (and its withdraw)
        Assert.False(node.HasRoute(3));
        Assert.False(node.Applier.Peers.ContainsKey("pk-10.244.3.0"));
        Assert.True(node.Meters.Sum(BackendMetrics.OperationFailuresName, "kind", "test-peer") >= 1);

        // Accepted again: the retry (after the first per-peer backoff, 1 s ± 20 % jitter) programs it.
        node.Applier.Refuse = null;
        node.Time.Advance(TimeSpan.FromSeconds(1.25));
        await node.WaitAsync(() => node.HasRoute(3));
        Assert.True(node.Applier.Peers.ContainsKey("pk-10.244.3.0"));
    }

    [Fact]
    public async Task Drift_in_backend_state_is_repaired_and_foreign_peers_are_removed()
    {
        // A peer left over from before a restart, which no lease wants.
        await using var node = await Node.StartAsync(n => n.Applier.Peers["pk-stale"] = IPEndPoint.Parse("198.18.0.99:51820"));
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(2)));
        await node.WaitAsync(() => node.HasRoute(2) && !node.Applier.Peers.ContainsKey("pk-stale"));

        node.Applier.Peers.Remove("pk-10.244.2.0");
        long passes = node.Network.CompletedReconciliations;
        node.Time.Advance(Resync);
        await node.WaitAsync(() => node.Network.CompletedReconciliations > passes);
        Assert.True(node.Applier.Peers.ContainsKey("pk-10.244.2.0"));
        Assert.True(node.Meters.Sum(BackendMetrics.RepairsName, "kind", "test-peer") >= 1);
    }

    [Fact]
    public async Task The_next_batch_is_taken_from_the_agent_only_when_the_previous_one_is_programmed()
    {
        await using var node = await Node.StartAsync();
        Assert.Equal(1, node.Pulled); // the snapshot
        node.Applier.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(2)));
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(3)));
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(4)));
        await node.Applier.Entered.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        // Peer 2's batch is being programmed (the kernel is slow): the two behind it stay with the agent, so its
        // store watch is not read ahead. An unbounded queue would have taken all three at once.
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(2, node.Pulled);

        node.Applier.Gate.SetResult();
        node.Applier.Gate = null;
        await node.WaitAsync(() => node.HasRoute(2) && node.HasRoute(3) && node.HasRoute(4));
        Assert.Equal(4, node.Pulled);
    }

    /// <summary>A first snapshot of <paramref name="count"/> peers, 10.0.0.0/24 onwards, public IPs 198.18.x.y.</summary>
    private static LeaseEvent[] Snapshot(int count) =>
        [.. Enumerable.Range(0, count).Select(i => new LeaseEvent(LeaseEventType.Added, PeerLease(2, $"198.18.{(i / 200) + 10}.{(i % 200) + 2}") with { Subnet = IPNetwork.Parse($"10.{i / 200}.{i % 200}.0/24") }))];

    [Fact]
    public async Task A_resync_diffs_the_objects_peers_were_programmed_with_and_builds_them_again_only_when_invalidated()
    {
        await using var node = await Node.StartAsync(prepare: null, Snapshot(3));
        Assert.Equal(3, node.Network.Builds);
        string peer = node.Applier.Peers.Keys.First();
        string leaseKey = Snapshot(3)[0].Lease.Key;

        // Something the objects depend on besides the lease changes, and a peer drifts. The resync repairs the peer
        // from the objects it was programmed with, builds nothing, and only moves the peer's check time.
        node.Network.ListenPort = 51821;
        node.Applier.Peers.Remove(peer);
        await PassAsync(node);
        Assert.Equal(3, node.Network.Builds);
        Assert.Equal(51820, node.Applier.Peers[peer].Port);
        await PassAsync(node);
        PeerKernelStatus status = node.Network.GetPeerKernelStatus(leaseKey);
        Assert.Equal(PeerKernelState.Programmed, status.State);
        Assert.Equal(node.Time.GetUtcNow(), status.CheckedAt);

        // The backend says so: every peer is built again, and what changed is programmed.
        node.Network.Invalidate();
        await PassAsync(node);
        Assert.Equal(6, node.Network.Builds);
        Assert.All(node.Applier.Peers.Values, endpoint => Assert.Equal(51821, endpoint.Port));

        static async Task PassAsync(Node node)
        {
            long passes = node.Network.CompletedReconciliations;
            node.Time.Advance(Resync);
            await node.WaitAsync(() => node.Network.CompletedReconciliations > passes);
        }
    }

    [Fact]
    public async Task The_kernel_watch_starts_after_the_start_up_pass_so_the_kernel_does_not_echo_its_objects()
    {
        await using var node = await Node.StartAsync(prepare: null, Snapshot(20));
        Assert.Equal(20, node.Applier.Peers.Count);
        Assert.Equal([0], node.Applier.WatchersWhileApplying.Distinct());
        await node.WaitAsync(() => node.Netlink.WatcherCount == 1);

        // From then on, a change behind the engine's back is repaired at once, without waiting for a tick.
        IPNetwork subnet = IPNetwork.Parse("10.0.0.0/24");
        Assert.Equal(1, node.Netlink.RemoveRoutesBehindBack(r => r.Destination == subnet));
        await node.WaitAsync(() => node.Netlink.Routes.Any(r => r.Destination == subnet));
    }

    [Fact]
    public async Task A_start_up_and_each_periodic_resync_over_many_peers_collect_their_garbage_and_other_passes_do_not()
    {
        LeaseEvent[] snapshot = Snapshot(ReconcilingNetwork.CollectGarbageMinPeers);
        await using var node = await Node.StartAsync(prepare: null, snapshot);
        Assert.Equal(ReconcilingNetwork.CollectGarbageMinPeers, node.Applier.Peers.Count);
        Assert.Equal(1, node.Collections); // after the pass: the peers are programmed before the pause

        // An event batch is not a full pass: no collection.
        await node.SendAsync(new LeaseEvent(LeaseEventType.Added, PeerLease(7, "198.18.9.7") with { Subnet = IPNetwork.Parse("10.244.200.0/24") }));
        await node.WaitAsync(() => node.Applier.Peers.Count == ReconcilingNetwork.CollectGarbageMinPeers + 1);
        Assert.Equal(1, node.Collections);

        // A full pass for drift (a route deleted behind our back) repairs without collecting.
        IPNetwork subnet = IPNetwork.Parse("10.0.0.0/24");
        Assert.Equal(1, node.Netlink.RemoveRoutesBehindBack(r => r.Destination == subnet));
        await node.WaitAsync(() => node.Netlink.Routes.Any(r => r.Destination == subnet));
        Assert.Equal(1, node.Collections);

        // Each periodic resync is followed by one collection.
        for (int resync = 1; resync <= 2; resync++)
        {
            long passes = node.Network.CompletedReconciliations;
            node.Time.Advance(Resync);
            await node.WaitAsync(() => node.Network.CompletedReconciliations > passes && node.Collections == 1 + resync);
        }
    }

    [Fact]
    public async Task A_small_network_or_an_embedder_that_turned_it_off_does_not_collect()
    {
        await using (var small = await Node.StartAsync(prepare: null, Snapshot(10)))
        {
            Assert.Equal(10, small.Applier.Peers.Count);
            await ResyncAsync(small);
            Assert.Equal(0, small.Collections);
        }

        AppContext.SetSwitch(ReconcilingNetwork.CollectGarbageSwitch, false);
        try
        {
            LeaseEvent[] snapshot = Snapshot(ReconcilingNetwork.CollectGarbageMinPeers);
            await using var off = await Node.StartAsync(prepare: null, snapshot);
            Assert.Equal(ReconcilingNetwork.CollectGarbageMinPeers, off.Applier.Peers.Count);
            await ResyncAsync(off);
            Assert.Equal(0, off.Collections);
        }
        finally
        {
            AppContext.SetSwitch(ReconcilingNetwork.CollectGarbageSwitch, true);
        }

        static async Task ResyncAsync(Node node)
        {
            long passes = node.Network.CompletedReconciliations;
            node.Time.Advance(Resync);
            await node.WaitAsync(() => node.Network.CompletedReconciliations > passes);
        }
    }

    /// <summary>A tunnel backend: per lease one peer (backend state) and one route via the peer's public IP.</summary>
    private sealed class TunnelNetwork(INetlink netlink, TimeProvider time, BackendMetrics metrics, PeerApplier applier, int underlayIndex)
        : ReconcilingNetwork("tunnel", netlink, time, Resync, metrics, NullLogger.Instance)
    {
        public override LeaseAttributes LeaseAttributes { get; } = new() { PublicIP = IPAddress.Parse("198.18.0.1"), BackendType = "tunnel" };

        public override int Mtu => 1420;

        /// <summary>The peers' port: something the objects depend on besides the lease.</summary>
        public int ListenPort { get; set; } = 51820;

        /// <summary>How often the engine asked for a peer's objects.</summary>
        public int Builds => Volatile.Read(ref _builds);

        private int _builds;

        public void Invalidate() => InvalidateDesiredState();

        protected override NetlinkNotificationGroups NotificationGroups => NetlinkNotificationGroups.Route;

        protected override string? ResyncReasonFor(NetlinkNotification notification) =>
            notification is { Kind: NetlinkNotificationKind.RouteDeleted, Route: { } route } && IsDesiredSubnet(route.Destination)
                ? "route-deleted"
                : base.ResyncReasonFor(notification);

        public override ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
        {
            OwnLease = ownLease;
            return ValueTask.CompletedTask;
        }

        protected override ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _builds);
            IPAddress publicIP = lease.Attributes.PublicIP;
            StateObject[] objects =
            [
                new TestPeer($"pk-{lease.Subnet!.Value.BaseAddress}", new IPEndPoint(publicIP, ListenPort), owner),
                KernelObject.ForRoute(new RouteSpec { Destination = lease.Subnet.Value, Gateway = publicIP, LinkIndex = underlayIndex, Protocol = RouteDefaults.ProtocolFlannel }, owner),
            ];
            return ValueTask.FromResult<IReadOnlyList<StateObject>>(objects);
        }

        protected override async ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken)
        {
            var owned = new List<StateObject>(applier.Peers.Select(p => new TestPeer(p.Key, p.Value, owner: null)));
            IReadOnlyList<RouteInfo> routes = await Netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, cancellationToken);
            owned.AddRange(routes.Select(KernelObject.ForObservedRoute));
            return owned;
        }

        protected override IStateApplier GetApplier(StateObjectKind kind) => kind == ReconcilePlanTests.PeerKind ? applier : base.GetApplier(kind);
    }

    /// <summary>The backend's applier: a device's peer table, which records whether the peer's route existed at each change.</summary>
    private sealed class PeerApplier(FakeNetlink netlink) : IStateApplier
    {
        public Dictionary<string, IPEndPoint> Peers { get; } = [];

        /// <summary>How many kernel watches were open at each call.</summary>
        public List<int> WatchersWhileApplying { get; } = [];

        public List<string> Log { get; } = [];

        public string? Refuse { get; set; }

        /// <summary>While set, ApplyAsync signals <see cref="Entered"/> and waits for it, as a slow kernel would.</summary>
        public TaskCompletionSource? Gate { get; set; }

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask<IReadOnlyList<Exception?>> ApplyAsync(IReadOnlyList<PlannedStep> steps, CancellationToken cancellationToken)
        {
            if (Gate is { } gate)
            {
                Entered.TrySetResult();
                await gate.Task.WaitAsync(cancellationToken);
            }

            WatchersWhileApplying.Add(netlink.WatcherCount);
            var results = new Exception?[steps.Count];
            for (int i = 0; i < steps.Count; i++)
            {
                var peer = (TestPeer)steps[i].Target;
                bool routePresent = netlink.Routes.Any(r => Equals(r.Gateway, peer.Endpoint.Address) || r.Destination.BaseAddress.ToString() == peer.PublicKey[3..]);
                if (peer.Owner is not null)
                {
                    Log.Add($"{steps[i].Action.ToString().ToLowerInvariant()} {peer.Kind.Name} (route present: {routePresent})");
                }

                if (steps[i].Action == RepairAction.Deleted)
                {
                    Peers.Remove(peer.PublicKey);
                }
                else if (peer.PublicKey == Refuse)
                {
                    results[i] = new InvalidOperationException($"peer {peer.PublicKey} refused");
                }
                else
                {
                    Peers[peer.PublicKey] = peer.Endpoint;
                }
            }

            return results;
        }
    }

    private sealed class Node : IAsyncDisposable
    {
        private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;

        public FakeNetlink Netlink { get; } = new();

        public FakeTimeProvider Time { get; } = new();

        public MeterCapture Meters { get; } = new();

        public PeerApplier Applier { get; private set; } = null!;

        /// <summary>Batches the engine has taken from the agent's enumerable so far.</summary>
        public int Pulled => Volatile.Read(ref _pulled);

        private int _pulled;

        public TunnelNetwork Network { get; private set; } = null!;

        /// <summary>Full collections the engine asked for (counted instead of collecting).</summary>
        public int Collections => Volatile.Read(ref _collections);

        private int _collections;

        public static async Task<Node> StartAsync(Action<Node>? prepare = null, params LeaseEvent[] snapshot)
        {
            var node = new Node();
            LinkInfo eth0 = node.Netlink.AddUnderlay("eth0", "198.18.0.1/16");
            node.Applier = new PeerApplier(node.Netlink);
            prepare?.Invoke(node);
            node.Network = new TunnelNetwork(node.Netlink, node.Time, new BackendMetrics("tunnel", node.Meters), node.Applier, eth0.Index)
            {
                CollectGarbage = () => Interlocked.Increment(ref node._collections),
            };
            await node.Network.ConfigureLeaseAsync(new Lease { Subnet = IPNetwork.Parse("10.244.1.0/24"), Attributes = node.Network.LeaseAttributes }, CancellationToken.None);
            node._run = node.Network.RunAsync(node.CountPulls(node._events.Reader.ReadAllAsync()), node._stop.Token);
            await node.SendAsync(snapshot); // the first snapshot (no peers unless given)
            await node.WaitAsync(() => node.Network.ProcessedEventBatches >= 1); // the start-up pass, and what follows it
            return node;
        }

        public ValueTask SendAsync(params LeaseEvent[] events) => _events.Writer.WriteAsync(events);

        private async IAsyncEnumerable<IReadOnlyList<LeaseEvent>> CountPulls(
            IAsyncEnumerable<IReadOnlyList<LeaseEvent>> source, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await foreach (IReadOnlyList<LeaseEvent> batch in source.WithCancellation(cancellationToken))
            {
                Interlocked.Increment(ref _pulled);
                yield return batch;
            }
        }

        public bool HasRoute(int peer) => Netlink.Routes.Any(r => r.Destination == IPNetwork.Parse($"10.244.{peer}.0/24"));

        public Task WaitAsync(Func<bool> condition) => Wait.UntilAsync(condition, "the condition");

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _run;
            await Netlink.DisposeAsync();
            Meters.Dispose();
            _stop.Dispose();
        }
    }
}
