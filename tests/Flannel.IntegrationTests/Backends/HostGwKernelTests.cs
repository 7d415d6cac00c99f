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

namespace Flannel.Backends.HostGw.Tests.Kernel;

/// <summary>Root only: two namespaces on one bridged underlay, each running a host-gw backend over a real RtNetlink.</summary>
public sealed class HostGwKernelTests
{
    private sealed class Node : IAsyncDisposable
    {
        private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;

        public required RtNetlink Netlink { get; init; }

        public FakeTimeProvider Time { get; } = new();

        public MeterCapture Meters { get; } = new();

        public INetwork Network { get; private set; } = null!;

        public Lease Lease { get; private set; } = null!;

        public static async Task<Node> RegisterAsync(string ns, int host)
        {
            var node = new Node { Netlink = RtNetlink.OpenInNamespace(ns) };
            LinkInfo eth0 = await node.Netlink.GetLinkAsync("eth0", CancellationToken.None) ?? throw new InvalidOperationException("no eth0");
            var address = IPAddress.Parse($"198.18.0.{host}");
            var backend = new HostGwBackend(node.Netlink, Options.Create(new HostGwBackendOptions()), node.Time, meterFactory: node.Meters);
            node.Network = await backend.RegisterNetworkAsync(
                new BackendContext
                {
                    Config = new NetworkConfig { Network = IPNetwork.Parse("10.244.0.0/16"), SubnetLen = 24, BackendType = "host-gw", Backend = """{"Type":"host-gw"}""" },
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

        public async Task<bool> HasRouteAsync(string destination, string via)
        {
            IReadOnlyList<RouteInfo> routes = await Netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, CancellationToken.None);
            return routes.Any(r => r.Destination == IPNetwork.Parse(destination) && Equals(r.Gateway, IPAddress.Parse(via)));
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

    private static Task WaitUntilAsync(Func<Task<bool>> condition, string what) =>
        Wait.UntilAsync(condition, what, new WaitOptions { PollInterval = TimeSpan.FromMilliseconds(50) });

    [Fact]
    public async Task Pods_on_two_nodes_reach_each_other_over_host_gw_and_a_hand_deleted_route_comes_back()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("ip");
        await using TwoNodeTopology topology = await TwoNodeTopology.CreateAsync();
        await using Node a = await Node.RegisterAsync(topology.NodeA, 1);
        await using Node b = await Node.RegisterAsync(topology.NodeB, 2);
        a.Start(b.Lease);
        b.Start(a.Lease);
        await WaitUntilAsync(async () => await a.HasRouteAsync("10.244.2.0/24", "198.18.0.2") && await b.HasRouteAsync("10.244.1.0/24", "198.18.0.1"), "both routes are programmed");

        // Forwarding between eth0 and the pods bridge is not needed: the target address is local to B.
        Assert.True(await TwoNodeTopology.PingsAsync(topology.NodeA, "10.244.1.1", "10.244.2.1"), "A's pod address reaches B's over host-gw");
        (_, string routes) = await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "show", "10.244.2.0/24");
        Assert.Contains("10.244.2.0/24 via 198.18.0.2 dev eth0", routes, StringComparison.Ordinal);

        // A tick over a clean kernel repairs nothing.
        a.Time.Advance(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(() => Task.FromResult(a.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic") >= 1), "a periodic pass ran");
        Assert.Equal(0, a.Meters.Sum("flannel.backend.repairs"));

        // Foreign routes, inside and outside the cluster network, with other protocols.
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "add", "10.244.77.0/24", "via", "198.18.0.2", "dev", "eth0", "proto", "static");
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "add", "192.0.2.0/24", "via", "198.18.0.2", "dev", "eth0");

        // Delete our route quietly: one resync restores it.
        await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "del", "10.244.2.0/24");
        a.Time.Advance(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(() => a.HasRouteAsync("10.244.2.0/24", "198.18.0.2"), "the resync restored the route");
        Assert.True(await TwoNodeTopology.PingsAsync(topology.NodeA, "10.244.1.1", "10.244.2.1"), "traffic flows again after the repair");
        Assert.Equal(1, a.Meters.Sum("flannel.backend.repairs", "action", "added"));

        a.Time.Advance(TimeSpan.FromSeconds(10));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        (_, string after) = await TwoNodeTopology.IpAsync("-n", topology.NodeA, "route", "show");
        Assert.Contains("10.244.77.0/24 via 198.18.0.2 dev eth0 proto static", after, StringComparison.Ordinal);
        Assert.Contains("192.0.2.0/24 via 198.18.0.2 dev eth0", after, StringComparison.Ordinal);
    }
}
