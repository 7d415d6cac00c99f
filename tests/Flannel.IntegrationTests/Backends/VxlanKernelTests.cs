using System.Net;
using System.Threading.Channels;
using Flannel.Backends.Kernel.Tests;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Backends.Vxlan.Tests.Kernel;

/// <summary>Root only: two namespaces joined by a bridge, each running a vxlan backend over a real RtNetlink.</summary>
public sealed class VxlanKernelTests
{
    private sealed class Node : IAsyncDisposable
    {
        private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;

        public required string Namespace { get; init; }

        public required RtNetlink Netlink { get; init; }

        public FakeTimeProvider Time { get; } = new();

        public MeterCapture Meters { get; } = new();

        public INetwork Network { get; private set; } = null!;

        public Lease Lease { get; private set; } = null!;

        public static async Task<Node> RegisterAsync(string ns, int host, VxlanRouteMode mode)
        {
            var node = new Node { Namespace = ns, Netlink = RtNetlink.OpenInNamespace(ns) };
            LinkInfo eth0 = await node.Netlink.GetLinkAsync("eth0", CancellationToken.None) ?? throw new InvalidOperationException("no eth0");
            var address = IPAddress.Parse($"198.18.0.{host}");
            var backend = new VxlanBackend(node.Netlink, Options.Create(new VxlanBackendOptions { RouteMode = mode }), node.Time, meterFactory: node.Meters, sysctl: ProcSysctl.InNamespace(ns));
            node.Network = await backend.RegisterNetworkAsync(
                new BackendContext
                {
                    Config = new NetworkConfig { Network = IPNetwork.Parse("10.244.0.0/16"), SubnetLen = 24, Backend = """{"Type":"vxlan"}""" },
                    ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = eth0.Mtu, IfaceAddress = address, PublicIP = address },
                },
                CancellationToken.None);
            node.Lease = new Lease { Subnet = IPNetwork.Parse($"10.244.{host}.0/24"), Attributes = node.Network.LeaseAttributes };
            await node.Network.ConfigureLeaseAsync(node.Lease, CancellationToken.None);
            return node;
        }

        public void Start(Lease peer)
        {
            _events.Writer.TryWrite([new LeaseEvent(LeaseEventType.Added, peer)]);
            _run = Network.RunAsync(_events.Reader.ReadAllAsync(), _stop.Token);
        }

        public async Task<bool> HasRouteAsync(string destination, bool viaNexthop = false)
        {
            IReadOnlyList<RouteInfo> routes = await Netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, CancellationToken.None);
            return routes.Any(r => r.Destination == IPNetwork.Parse(destination) && (!viaNexthop || r.NexthopId is not null));
        }

        public async ValueTask DisposeAsync()
        {
            _events.Writer.TryComplete();
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
            await Netlink.DisposeAsync();
            Meters.Dispose();
        }
    }

    private static Task WaitUntilAsync(Func<Task<bool>> condition, string what, Action? step = null) =>
        Wait.UntilAsync(condition, what, new WaitOptions { PollInterval = TimeSpan.FromMilliseconds(50), BetweenPolls = step });

    [Theory]
    [InlineData(VxlanRouteMode.Classic)]
    [InlineData(VxlanRouteMode.NexthopObjects)]
    public async Task Pods_on_two_nodes_reach_each_other_over_vxlan_and_hand_deleted_objects_come_back(VxlanRouteMode mode)
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("ip");
        Privileged.RequireExecutable("bridge");
        await using TwoNodeTopology topology = await TwoNodeTopology.CreateAsync();
        await using Node a = await Node.RegisterAsync(topology.NodeA, 1, mode);
        await using Node b = await Node.RegisterAsync(topology.NodeB, 2, mode);
        a.Start(b.Lease);
        b.Start(a.Lease);
        bool nexthops = mode == VxlanRouteMode.NexthopObjects;
        await WaitUntilAsync(async () => await a.HasRouteAsync("10.244.2.0/24", nexthops) && await b.HasRouteAsync("10.244.1.0/24", nexthops), "both routes are programmed");

        Assert.True(await TwoNodeTopology.PingsAsync(topology.NodeA, "10.244.1.1", "10.244.2.1"), "A's pod address reaches B's over vxlan");

        (_, string shown) = await TwoNodeTopology.IpAsync("-n", topology.NodeA, "-d", "link", "show", "flannel.1");
        Assert.Contains("vxlan id 1", shown, StringComparison.Ordinal);
        Assert.Contains("nolearning", shown, StringComparison.Ordinal);
        Assert.Contains("mtu 1450", shown, StringComparison.Ordinal);

        // A tick over a clean kernel repairs nothing: what the kernel reports compares equal to the desired state.
        a.Time.Advance(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(() => Task.FromResult(a.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic") >= 1), "a periodic pass ran");
        Assert.True(
            a.Meters.Sum("flannel.backend.repairs") == 0,
            string.Join(", ", new[] { "route", "neighbor", "fdb", "nexthop", "added", "fixed", "deleted" }.Select(k => $"{k}={a.Meters.Sum("flannel.backend.repairs", k is "added" or "fixed" or "deleted" ? "action" : "kind", k)}")));

        // A foreign route on our device, outside our protocol: reconciliation must never touch it.
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "add", "10.244.78.0/24", "via", "10.244.2.0", "dev", "flannel.1", "onlink", "proto", "static");

        // Delete the three objects by hand; one resync restores them.
        string macB = b.Network.LeaseAttributes.BackendData!.Split('"')[5];
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "del", "10.244.2.0/24");
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "neigh", "del", "10.244.2.0", "dev", "flannel.1");
        await TwoNodeTopology.BridgeAsync("-n", topology.NodeA, "fdb", "del", macB, "dev", "flannel.1", "dst", "198.18.0.2");
        a.Time.Advance(TimeSpan.FromSeconds(10));

        await WaitUntilAsync(
            async () =>
            {
                (_, string neigh) = await TwoNodeTopology.IpAsync("-n", topology.NodeA, "neigh", "show", "dev", "flannel.1");
                (_, string fdb) = await TwoNodeTopology.BridgeAsync("-n", topology.NodeA, "fdb", "show", "dev", "flannel.1");
                return await a.HasRouteAsync("10.244.2.0/24", nexthops)
                    && neigh.Contains($"10.244.2.0 lladdr {macB} PERMANENT", StringComparison.Ordinal)
                    && fdb.Contains($"{macB} dst 198.18.0.2 self permanent", StringComparison.Ordinal);
            },
            "the resync restored route, neighbour and FDB entry");
        Assert.True(await TwoNodeTopology.PingsAsync(topology.NodeA, "10.244.1.1", "10.244.2.1"), "traffic flows again after the repair");
        Assert.True(a.Meters.Sum("flannel.backend.repairs", "action", "added") >= 3);
        Assert.Equal(0, a.Meters.Sum("flannel.backend.repairs", "action", "deleted"));

        (_, string routes) = await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "show");
        Assert.Contains("10.244.78.0/24 via 10.244.2.0 dev flannel.1 proto static onlink", routes, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_device_is_recreated_and_traffic_flows_again()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("ip");
        await using TwoNodeTopology topology = await TwoNodeTopology.CreateAsync();
        await using Node a = await Node.RegisterAsync(topology.NodeA, 1, VxlanRouteMode.Classic);
        await using Node b = await Node.RegisterAsync(topology.NodeB, 2, VxlanRouteMode.Classic);
        a.Start(b.Lease);
        b.Start(a.Lease);
        await WaitUntilAsync(async () => await a.HasRouteAsync("10.244.2.0/24") && await b.HasRouteAsync("10.244.1.0/24"), "both routes are programmed");

        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "link", "del", "flannel.1");

        // The link notification triggers the recreation; ticks also would, so keep the clock moving.
        await WaitUntilAsync(async () => await a.HasRouteAsync("10.244.2.0/24"), "the device and the peer are back", () => a.Time.Advance(TimeSpan.FromSeconds(1)));
        Assert.True(await TwoNodeTopology.PingsAsync(topology.NodeA, "10.244.1.1", "10.244.2.1"), "traffic flows over the recreated device");
    }
}
