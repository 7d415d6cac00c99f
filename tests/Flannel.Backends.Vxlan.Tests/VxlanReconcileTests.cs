using System.Net;
using Flannel.Backends.Vxlan;
using Flannel.Netlink;
using static Flannel.Backends.Vxlan.Tests.VxlanHarness;

namespace Flannel.Backends.Vxlan.Tests;

public sealed class VxlanReconcileTests
{
    private static async Task<VxlanHarness> StartWithPeersAsync(int count = 3, VxlanRouteMode mode = VxlanRouteMode.Classic)
    {
        VxlanHarness node = await StartAsync(mode: mode);
        await node.SendAsync(Enumerable.Range(2, count).Select(i => Added(Peer(i))).ToArray());
        await WaitUntilAsync(() => Enumerable.Range(2, count).All(i => node.HasRoute(i) && node.HasNeighbor(i)), "peers are programmed");

        // The engine opens its kernel watch only after the start-up pass (what changes before is the first periodic
        // resync's), and the peers appear during that pass: a change made behind its back before the watch is open
        // would wait for a tick these tests never give.
        await WaitUntilAsync(() => node.Netlink.WatcherCount > 0, "the kernel watch is open");
        return node;
    }

    [Fact]
    public async Task A_resync_tick_restores_a_deleted_route_neighbour_and_FDB_entry_and_counts_the_repairs()
    {
        await using VxlanHarness node = await StartWithPeersAsync();
        int device = node.Device.Index;

        Assert.Equal(1, node.Netlink.RemoveRoutesBehindBack(r => r.Destination == SubnetOf(2)));
        Assert.Equal(1, node.Netlink.RemoveNeighborsBehindBack(n => n.Address.Equals(IPAddress.Parse("10.244.3.0"))));
        Assert.Equal(1, node.Netlink.RemoveFdbEntriesBehindBack(e => e.MacAddress == MacOf(4)));

        await node.WaitAdvancingAsync(() => node.IsProgrammed(2) && node.IsProgrammed(3) && node.IsProgrammed(4), TimeSpan.FromSeconds(10), "the tick repairs everything");

        Assert.Equal(device, node.Device.Index);
        await WaitUntilAsync(
            () => node.Meters.Sum("flannel.backend.repairs", "kind", "fdb") >= 1 && node.Meters.Sum("flannel.backend.repairs", "kind", "neighbor") >= 1
                && node.Meters.Sum("flannel.backend.repairs", "kind", "route") >= 1,
            "three repairs are counted");
        Assert.Equal(1, node.Meters.Sum("flannel.backend.repairs", "kind", "fdb"));
        Assert.Equal(1, node.Meters.Sum("flannel.backend.repairs", "kind", "neighbor"));
        Assert.True(node.Meters.Sum("flannel.backend.repairs", "kind", "route") >= 1);
    }

    [Fact]
    public async Task A_tick_fixes_a_neighbour_with_a_wrong_MAC_and_deletes_an_FDB_entry_nobody_wants()
    {
        await using VxlanHarness node = await StartWithPeersAsync();
        int device = node.Device.Index;
        var wrong = MacAddress.Parse("0e:ff:ff:ff:ff:ff");
        node.Netlink.SetNeighborBehindBack(device, IPAddress.Parse("10.244.2.0"), wrong);
        node.Netlink.AddFdbEntryBehindBack(device, MacAddress.Parse("0e:00:00:00:00:99"), IPAddress.Parse("198.18.0.99"));

        await node.WaitAdvancingAsync(
            () => node.IsProgrammed(2) && !node.Netlink.FdbEntries.Any(e => e.MacAddress == MacAddress.Parse("0e:00:00:00:00:99")),
            TimeSpan.FromSeconds(10),
            "the neighbour is fixed and the stale FDB entry deleted");

        await WaitUntilAsync(() => node.Meters.Sum("flannel.backend.repairs", "action", "fixed") >= 1, "the fix is counted");
        Assert.True(node.Meters.Sum("flannel.backend.repairs", "action", "deleted") >= 1);
    }

    [Fact]
    public async Task A_clean_kernel_costs_a_dump_and_no_change_per_tick()
    {
        await using VxlanHarness node = await StartWithPeersAsync();
        long before = node.Netlink.MutationCount;
        long reconciliations = node.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic");

        await node.WaitAdvancingAsync(
            () => node.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic") > reconciliations,
            TimeSpan.FromSeconds(10),
            "a periodic reconciliation ran");

        Assert.Equal(before, node.Netlink.MutationCount);
        Assert.Equal(0, node.Meters.Sum("flannel.backend.repairs"));
    }

    [Fact]
    public async Task A_deleted_device_is_recreated_with_the_same_MAC_and_every_peer_is_replayed()
    {
        await using VxlanHarness node = await StartWithPeersAsync(count: 5);
        LinkInfo before = node.Device;

        node.Netlink.DeleteLinkBehindBack("flannel.1");

        // The link notification triggers the repair at once; no tick is needed.
        await WaitUntilAsync(() => node.Netlink.FindLink("flannel.1") is { IsUp: true } && Enumerable.Range(2, 5).All(i => node.IsProgrammed(i)), "the device and all peers are back");
        LinkInfo after = node.Device;
        Assert.NotEqual(before.Index, after.Index);
        Assert.Equal(before.Address, after.Address);
        Assert.Equal(before.Mtu, after.Mtu);
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == after.Index && a.Address == IPNetwork.Parse("10.244.1.0/32"));
        Assert.Equal(1, node.Meters.Sum("flannel.backend.device.recreations"));
    }

    [Fact]
    public async Task A_device_set_down_is_brought_back_up_and_its_routes_replayed()
    {
        await using VxlanHarness node = await StartWithPeersAsync();

        node.Netlink.SetLinkUpBehindBack("flannel.1", up: false); // the kernel flushes the device's routes

        await WaitUntilAsync(() => node.Device.IsUp && node.IsProgrammed(2) && node.IsProgrammed(3) && node.IsProgrammed(4), "device up and routes back");
    }

    [Fact]
    public async Task A_route_deleted_by_hand_comes_back_from_the_notification_without_a_tick()
    {
        await using VxlanHarness node = await StartWithPeersAsync();

        node.Netlink.RemoveRoutesBehindBack(r => r.Destination == SubnetOf(3));

        await WaitUntilAsync(() => node.IsProgrammed(3), "route restored");
    }

    [Fact]
    public async Task Startup_garbage_collects_objects_of_peers_that_vanished_while_down()
    {
        var netlink = new Flannel.Testing.FakeNetlink.FakeNetlink();
        await using (VxlanHarness first = await StartAsync(netlink: netlink))
        {
            await first.SendAsync(Added(Peer(2)), Added(Peer(3)), Added(Peer(9)));
            await WaitUntilAsync(() => first.IsProgrammed(2) && first.IsProgrammed(3) && first.IsProgrammed(9), "peers are programmed");
        }

        // The agent restarts; peer 9 left the cluster meanwhile.
        await using VxlanHarness second = await StartAsync(netlink: netlink);
        await second.SendAsync(Added(Peer(2)), Added(Peer(3)));
        // The deletions are counted after the batch returns, which may be a moment after they show in the kernel.
        await WaitUntilAsync(
            () => second.HasNothingFor(9) && second.Meters.Sum("flannel.backend.repairs", "action", "deleted") >= 3,
            "peer 9's leftovers are collected and counted");

        Assert.True(second.IsProgrammed(2));
        Assert.True(second.IsProgrammed(3));
        Assert.Equal(3, second.Meters.Sum("flannel.backend.repairs", "action", "deleted"));
        Assert.Equal(0, second.Meters.Sum("flannel.backend.repairs", "action", "added"));
    }

    [Fact]
    public async Task Foreign_routes_are_never_touched()
    {
        await using VxlanHarness node = await StartWithPeersAsync();
        var foreignInCluster = new RouteSpec { Destination = IPNetwork.Parse("10.244.50.0/24"), LinkIndex = node.Underlay.Index, Protocol = RouteDefaults.ProtocolBoot, Scope = RouteScope.Link };
        var foreignStatic = new RouteSpec { Destination = IPNetwork.Parse("192.0.2.0/24"), Gateway = IPAddress.Parse("198.18.0.254"), LinkIndex = node.Underlay.Index, Protocol = 4 };
        var flannelProtoOutsideCluster = new RouteSpec { Destination = IPNetwork.Parse("10.99.0.0/24"), LinkIndex = node.Underlay.Index, Protocol = RouteDefaults.ProtocolFlannel, Scope = RouteScope.Link };
        node.Netlink.AddForeignRoute(foreignInCluster);
        node.Netlink.AddForeignRoute(foreignStatic);
        node.Netlink.AddForeignRoute(flannelProtoOutsideCluster);
        long periodic = node.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic");

        await node.WaitAdvancingAsync(() => node.Meters.Sum("flannel.backend.reconciliations", "reason", "periodic") >= periodic + 2, TimeSpan.FromSeconds(10), "two ticks ran");

        Assert.Contains(node.Netlink.Routes, r => r.Destination == foreignInCluster.Destination && r.Protocol == RouteDefaults.ProtocolBoot);
        Assert.Contains(node.Netlink.Routes, r => r.Destination == foreignStatic.Destination && r.Protocol == 4);
        Assert.Contains(node.Netlink.Routes, r => r.Destination == flannelProtoOutsideCluster.Destination);
        Assert.DoesNotContain(node.Netlink.Calls, c => c.Name == "DeleteRoute");
    }

    [Fact]
    public async Task Nexthop_mode_repairs_a_deleted_nexthop_object_and_its_route()
    {
        await using VxlanHarness node = await StartWithPeersAsync(mode: VxlanRouteMode.NexthopObjects);
        uint id = node.Netlink.Routes.Single(r => r.Destination == SubnetOf(3)).NexthopId!.Value;

        await node.Netlink.DeleteNexthopAsync(id, CancellationToken.None); // takes the route with it

        await node.WaitAdvancingAsync(
            () => node.Netlink.Nexthops.Any(n => n.Id == id) && node.Netlink.Routes.Any(r => r.Destination == SubnetOf(3) && r.NexthopId == id),
            TimeSpan.FromSeconds(10),
            "nexthop and route are back");
    }

    [Fact]
    public async Task Switching_route_mode_converts_the_existing_routes_at_startup()
    {
        var netlink = new Flannel.Testing.FakeNetlink.FakeNetlink();
        await using (VxlanHarness classic = await StartAsync(netlink: netlink))
        {
            await classic.SendAsync(Added(Peer(2)));
            await WaitUntilAsync(() => classic.IsProgrammed(2), "classic route");
        }

        await using VxlanHarness nexthop = await StartAsync(mode: VxlanRouteMode.NexthopObjects, netlink: netlink);
        await nexthop.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => nexthop.Netlink.Routes.Any(r => r.Destination == SubnetOf(2) && r.NexthopId is not null), "nexthop route");
        Assert.Single(nexthop.Netlink.Routes, r => r.Destination == SubnetOf(2));
    }
}
