using System.Net;
using System.Threading.Channels;
using Flannel.Backends.HostGw;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Flannel.Testing;

namespace Flannel.Backends.HostGw.Tests;

public sealed class HostGwTests
{
    private static readonly NetworkConfig Config = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        SubnetLen = 24,
        BackendType = "host-gw",
        Backend = """{"Type":"host-gw"}""",
    };

    private static IPNetwork SubnetOf(int peer) => IPNetwork.Parse($"10.244.{peer}.0/24");

    private static Lease Peer(int peer, string? publicIP = null, string backendType = "host-gw") => new()
    {
        Subnet = SubnetOf(peer),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP ?? $"198.18.0.{peer}"), BackendType = backendType },
    };

    private static LeaseEvent Added(Lease lease) => new(LeaseEventType.Added, lease);

    private static LeaseEvent Removed(Lease lease) => new(LeaseEventType.Removed, lease);

    private static ExternalInterface External(LinkInfo eth0, string publicIP = "198.18.0.1") => new()
    {
        Name = "eth0",
        Index = eth0.Index,
        Mtu = eth0.Mtu,
        IfaceAddress = IPAddress.Parse("198.18.0.1"),
        PublicIP = IPAddress.Parse(publicIP),
    };

    private sealed class Node : IAsyncDisposable
    {
        private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;

        public FakeNetlink Netlink { get; } = new();

        public FakeTimeProvider Time { get; } = new();

        public MeterCapture Meters { get; } = new();

        public LinkInfo Eth0 { get; private set; } = null!;

        public INetwork Network { get; private set; } = null!;

        public static async Task<Node> StartAsync(Action<Node>? prepare = null)
        {
            var node = new Node();
            node.Eth0 = node.Netlink.AddUnderlay("eth0", "198.18.0.1/24", mtu: 9000);
            prepare?.Invoke(node);
            var backend = new HostGwBackend(node.Netlink, Options.Create(new HostGwBackendOptions()), node.Time, meterFactory: node.Meters);
            node.Network = await backend.RegisterNetworkAsync(new BackendContext { Config = Config, ExternalInterface = External(node.Eth0) }, CancellationToken.None);
            await node.Network.ConfigureLeaseAsync(new Lease { Subnet = SubnetOf(1), Attributes = node.Network.LeaseAttributes }, CancellationToken.None);
            node._run = node.Network.RunAsync(node._events.Reader.ReadAllAsync(), node._stop.Token);
            return node;
        }

        public ValueTask SendAsync(params LeaseEvent[] events) => _events.Writer.WriteAsync(events);

        public bool HasRoute(int peer, string? via = null) => Netlink.Routes.Any(r =>
            r.Destination == SubnetOf(peer) && Equals(r.Gateway, IPAddress.Parse(via ?? $"198.18.0.{peer}"))
            && r.LinkIndex == Eth0.Index && r.Protocol == RouteDefaults.ProtocolFlannel);

        public bool HasAnyRoute(int peer) => Netlink.Routes.Any(r => r.Destination == SubnetOf(peer));

        public Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? advance = null) =>
            Wait.UntilAsync(condition, what, new WaitOptions { BetweenPolls = advance is { } step ? () => Time.Advance(step) : null });

        public async ValueTask DisposeAsync()
        {
            _events.Writer.TryComplete();
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
            Meters.Dispose();
        }
    }

    [Fact]
    public async Task Registration_refuses_NAT_with_flannels_message()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var backend = new HostGwBackend(netlink, Options.Create(new HostGwBackendOptions()), new FakeTimeProvider());

        InvalidOperationException error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await backend.RegisterNetworkAsync(new BackendContext { Config = Config, ExternalInterface = External(eth0, publicIP: "203.0.113.7") }, CancellationToken.None));

        Assert.Equal("your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend", error.Message);
    }

    [Fact]
    public async Task Registration_publishes_host_gw_attributes_without_backend_data_and_the_interface_MTU()
    {
        await using Node node = await Node.StartAsync();

        Assert.Equal("host-gw", node.Network.LeaseAttributes.BackendType);
        Assert.Null(node.Network.LeaseAttributes.BackendData);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), node.Network.LeaseAttributes.PublicIP);
        Assert.Equal(9000, node.Network.Mtu);
    }

    [Fact]
    public async Task A_remote_lease_gets_a_route_via_its_address_on_the_external_interface_and_loses_it_on_removal()
    {
        await using Node node = await Node.StartAsync();

        await node.SendAsync(Added(Peer(2)), Added(Peer(3)));
        await node.WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(3), "routes exist");
        RouteInfo route = node.Netlink.Routes.Single(r => r.Destination == SubnetOf(2));
        Assert.Equal(RouteDefaults.MainTable, route.Table);
        Assert.False(route.OnLink);

        await node.SendAsync(Removed(Peer(2)));
        await node.WaitUntilAsync(() => !node.HasAnyRoute(2), "route 2 is gone");
        Assert.True(node.HasRoute(3));
    }

    [Fact]
    public async Task A_differing_route_is_replaced_when_the_peer_moves()
    {
        await using Node node = await Node.StartAsync();
        await node.SendAsync(Added(Peer(2)));
        await node.WaitUntilAsync(() => node.HasRoute(2), "route exists");

        await node.SendAsync(Added(Peer(2, publicIP: "198.18.0.200")));
        await node.WaitUntilAsync(() => node.HasRoute(2, via: "198.18.0.200"), "route follows the peer");
        Assert.Single(node.Netlink.Routes, r => r.Destination == SubnetOf(2));
    }

    [Fact]
    public async Task A_preexisting_differing_route_for_a_peer_subnet_is_replaced_at_startup()
    {
        await using Node node = await Node.StartAsync(n => n.Netlink.AddForeignRoute(new RouteSpec
        {
            Destination = SubnetOf(2),
            Gateway = IPAddress.Parse("198.18.0.77"),
            LinkIndex = n.Eth0.Index,
        }));

        await node.SendAsync(Added(Peer(2)));
        await node.WaitUntilAsync(() => node.HasRoute(2), "route replaced");
        Assert.Single(node.Netlink.Routes, r => r.Destination == SubnetOf(2));
    }

    [Fact]
    public async Task Leases_of_other_backends_are_ignored_and_a_bad_peer_does_not_stop_the_others()
    {
        await using Node node = await Node.StartAsync();
        using IDisposable fault = node.Netlink.InjectFault(op => op.Spec is RouteSpec r && r.Destination == SubnetOf(3), errno: 101);

        await node.SendAsync(Added(Peer(2)), Added(Peer(3)), Added(Peer(4, backendType: "vxlan")), Added(Peer(5)));
        // The failure is counted after the batch returns, which may be a moment after the good routes appear.
        await node.WaitUntilAsync(
            () => node.HasRoute(2) && node.HasRoute(5) && node.Meters.Sum("flannel.backend.netlink.failures", "kind", "route") >= 1,
            "good peers are routed and the refusal is counted");

        Assert.False(node.HasAnyRoute(3));
        Assert.False(node.HasAnyRoute(4));
    }

    [Fact]
    public async Task An_unreachable_next_hop_fails_only_that_peer()
    {
        await using Node node = await Node.StartAsync();

        // 203.0.113.9 is not on eth0's subnet: the kernel refuses the route (ENETUNREACH), as it does for flannel.
        await node.SendAsync(Added(Peer(2)), Added(Peer(3, publicIP: "203.0.113.9")), Added(Peer(4)));
        await node.WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(4), "good peers are routed");
        Assert.False(node.HasAnyRoute(3));
    }

    [Fact]
    public async Task A_resync_tick_restores_missing_routes_deletes_stale_ones_and_leaves_foreign_ones()
    {
        await using Node node = await Node.StartAsync();
        await node.SendAsync(Added(Peer(2)), Added(Peer(3)));
        await node.WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(3), "routes exist");

        var foreign = new RouteSpec { Destination = SubnetOf(60), Gateway = IPAddress.Parse("198.18.0.60"), LinkIndex = node.Eth0.Index, Protocol = RouteDefaults.ProtocolBoot };
        var stale = new RouteSpec { Destination = SubnetOf(61), Gateway = IPAddress.Parse("198.18.0.61"), LinkIndex = node.Eth0.Index, Protocol = RouteDefaults.ProtocolFlannel };
        node.Netlink.AddForeignRoute(foreign);
        node.Netlink.AddForeignRoute(stale);
        // Quietly (no notification) lose route 2, as a NIC flap would.
        node.Netlink.RemoveRoutesBehindBack(r => r.Destination == SubnetOf(2));

        await node.WaitUntilAsync(() => node.HasRoute(2) && !node.HasAnyRoute(61), "the tick repaired the routes", advance: TimeSpan.FromSeconds(10));

        Assert.True(node.HasAnyRoute(60));
        Assert.True(node.HasRoute(3));
        await node.WaitUntilAsync(() => node.Meters.Sum("flannel.backend.repairs", "action", "deleted") >= 1, "the delete is counted");
    }

    [Fact]
    public async Task Routes_flushed_by_an_interface_flap_come_back_when_it_is_up_again()
    {
        await using Node node = await Node.StartAsync();
        await node.SendAsync(Added(Peer(2)), Added(Peer(3)));
        await node.WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(3), "routes exist");
        // The kernel watch opens after the start-up pass that made the routes; the flap must come after it.
        await node.WaitUntilAsync(() => node.Netlink.WatcherCount > 0, "the kernel watch is open");

        node.Netlink.SetLinkUpBehindBack("eth0", up: false);
        Assert.False(node.HasAnyRoute(2));
        node.Netlink.SetLinkUpBehindBack("eth0", up: true);

        await node.WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(3), "routes are back without a tick");
    }

    [Fact]
    public async Task Startup_garbage_collects_routes_of_peers_that_vanished_while_down()
    {
        await using Node node = await Node.StartAsync(n =>
        {
            foreach (int peer in new[] { 2, 9 })
            {
                n.Netlink.AddForeignRoute(new RouteSpec { Destination = SubnetOf(peer), Gateway = IPAddress.Parse($"198.18.0.{peer}"), LinkIndex = n.Eth0.Index, Protocol = RouteDefaults.ProtocolFlannel });
            }
        });

        await node.SendAsync(Added(Peer(2)));
        await node.WaitUntilAsync(() => !node.HasAnyRoute(9), "peer 9's route is collected");
        Assert.True(node.HasRoute(2));
    }

    [Fact]
    public async Task Startup_garbage_collects_every_route_of_ours_on_the_interface_even_outside_the_network()
    {
        // What an agent without admission (or with another Network) left behind: a peer outside the network and a key
        // as wide as 10.0.0.0/8, both via eth0 with our protocol. A route of another protocol there stays.
        var outside = new RouteSpec { Destination = IPNetwork.Parse("192.168.7.0/24"), Gateway = IPAddress.Parse("198.18.0.7"), LinkIndex = 0, Protocol = RouteDefaults.ProtocolFlannel };
        var wide = new RouteSpec { Destination = IPNetwork.Parse("10.0.0.0/8"), Gateway = IPAddress.Parse("198.18.0.8"), LinkIndex = 0, Protocol = RouteDefaults.ProtocolFlannel };
        var foreign = new RouteSpec { Destination = IPNetwork.Parse("192.168.8.0/24"), Gateway = IPAddress.Parse("198.18.0.9"), LinkIndex = 0, Protocol = RouteDefaults.ProtocolBoot };
        await using Node node = await Node.StartAsync(n =>
        {
            foreach (RouteSpec route in new[] { outside, wide, foreign })
            {
                n.Netlink.AddForeignRoute(route with { LinkIndex = n.Eth0.Index });
            }
        });

        await node.SendAsync(Added(Peer(2)));
        await node.WaitUntilAsync(
            () => node.HasRoute(2) && !node.Netlink.Routes.Any(r => r.Destination == outside.Destination || r.Destination == wide.Destination),
            "the leftover routes are collected and peer 2 is programmed");
        Assert.Contains(node.Netlink.Routes, r => r.Destination == foreign.Destination);
    }

    [Fact]
    public void AddHostGwBackend_registers_a_keyed_backend()
    {
        var services = new ServiceCollection();
        services.AddSingleton<INetlink>(new FakeNetlink());
        services.AddFlannel().AddHostGwBackend(o => o.ResyncInterval = TimeSpan.FromSeconds(3));
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.Equal("host-gw", provider.GetRequiredKeyedService<IBackend>("host-gw").BackendType);
        Assert.Equal(TimeSpan.FromSeconds(3), provider.GetRequiredService<IOptions<HostGwBackendOptions>>().Value.ResyncInterval);
    }
}
