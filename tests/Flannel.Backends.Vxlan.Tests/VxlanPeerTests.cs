using System.Net;
using Flannel.Backends.Vxlan;
using Flannel.Netlink;
using Flannel.Subnets;
using static Flannel.Backends.Vxlan.Tests.VxlanHarness;

namespace Flannel.Backends.Vxlan.Tests;

public sealed class VxlanPeerTests
{
    [Fact]
    public async Task A_remote_lease_gets_neighbour_then_FDB_then_onlink_route()
    {
        await using VxlanHarness node = await StartAsync();
        node.Netlink.ClearCalls();

        await node.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => node.IsProgrammed(2), "peer 2 is programmed");

        NeighborInfo neighbor = Assert.Single(node.Netlink.Neighbors);
        Assert.Equal(IPAddress.Parse("10.244.2.0"), neighbor.Address);
        Assert.Equal(MacOf(2), neighbor.LinkLayerAddress);
        Assert.True(neighbor.IsPermanent);
        FdbEntryInfo fdb = Assert.Single(node.Netlink.FdbEntries);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), fdb.Destination);
        Assert.True(fdb.IsPermanent);
        Assert.Equal(NeighborFlags.Self, fdb.Flags & NeighborFlags.Self);
        RouteInfo route = Assert.Single(node.Netlink.Routes, r => r.Protocol == RouteDefaults.ProtocolFlannel);
        Assert.Equal(RouteScope.Universe, route.Scope);
        Assert.Equal(RouteDefaults.MainTable, route.Table);

        // flannel's order: the route last, so the kernel never ARPs for the gateway.
        string[] order = node.Netlink.Calls.Select(c => c.Name).Where(n => n.StartsWith("Replace", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["ReplaceNeighbor", "ReplaceFdbEntry", "ReplaceRoute"], order);
    }

    [Fact]
    public async Task The_initial_snapshot_is_programmed_in_one_batch()
    {
        await using VxlanHarness node = await StartAsync();
        int batchesBefore = node.Netlink.BatchCount;

        await node.SendAsync(Enumerable.Range(2, 200).Select(i => Added(Peer(i))).ToArray());
        await WaitUntilAsync(() => Enumerable.Range(2, 200).All(i => node.IsProgrammed(i)), "all 200 peers are programmed");

        Assert.Equal(batchesBefore + 1, node.Netlink.BatchCount);
        Assert.Equal(200, node.Netlink.Routes.Count(r => r.Protocol == RouteDefaults.ProtocolFlannel));
    }

    [Fact]
    public async Task Removing_a_lease_deletes_all_three_objects()
    {
        await using VxlanHarness node = await StartAsync();
        await node.SendAsync(Added(Peer(2)), Added(Peer(3)));
        await WaitUntilAsync(() => node.IsProgrammed(2) && node.IsProgrammed(3), "peers are programmed");

        await node.SendAsync(Removed(Peer(2)));
        await WaitUntilAsync(() => node.HasNothingFor(2), "peer 2 is gone");

        Assert.True(node.IsProgrammed(3));
    }

    [Fact]
    public async Task A_changed_VtepMAC_replaces_the_neighbour_and_removes_the_stale_FDB_entry()
    {
        await using VxlanHarness node = await StartAsync();
        await node.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => node.IsProgrammed(2), "peer 2 is programmed");

        var newMac = MacAddress.Parse("0e:00:00:00:aa:02");
        await node.SendAsync(Added(Peer(2, mac: newMac.ToString())));
        await WaitUntilAsync(() => node.IsProgrammed(2, newMac), "peer 2 uses its new MAC");

        Assert.DoesNotContain(node.Netlink.FdbEntries, e => e.MacAddress == MacOf(2));
        Assert.Single(node.Netlink.FdbEntries);
        Assert.Single(node.Netlink.Neighbors);
    }

    [Fact]
    public async Task A_changed_PublicIP_moves_the_FDB_entry()
    {
        await using VxlanHarness node = await StartAsync();
        await node.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => node.IsProgrammed(2), "peer 2 is programmed");

        await node.SendAsync(Added(Peer(2, publicIP: "198.18.0.202")));
        await WaitUntilAsync(() => node.IsProgrammed(2, publicIP: "198.18.0.202"), "peer 2 uses its new address");

        FdbEntryInfo only = Assert.Single(node.Netlink.FdbEntries);
        Assert.Equal(IPAddress.Parse("198.18.0.202"), only.Destination);
    }

    [Fact]
    public async Task Leases_of_other_backends_are_ignored()
    {
        await using VxlanHarness node = await StartAsync();
        await node.SendAsync(Added(Peer(2, backendType: "host-gw")), Added(Peer(3)));
        await WaitUntilAsync(() => node.IsProgrammed(3), "peer 3 is programmed");

        Assert.True(node.HasNothingFor(2));
    }

    [Fact]
    public async Task A_peer_that_switches_to_another_backend_is_removed()
    {
        await using VxlanHarness node = await StartAsync();
        await node.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => node.IsProgrammed(2), "peer 2 is programmed");

        await node.SendAsync(Added(Peer(2, backendType: "host-gw")));
        await WaitUntilAsync(() => node.HasNothingFor(2), "peer 2's vxlan objects are gone");
    }

    [Fact]
    public async Task A_peer_the_kernel_refuses_is_rolled_back_and_does_not_stop_the_others()
    {
        await using VxlanHarness node = await StartAsync();
        IDisposable fault = node.Netlink.InjectFault(op => op.Spec is RouteSpec r && r.Destination == SubnetOf(3));

        await node.SendAsync(Added(Peer(2)), Added(Peer(3)), Added(Peer(4)));
        await WaitUntilAsync(() => node.IsProgrammed(2) && node.IsProgrammed(4), "the good peers are programmed");

        // Peer 3's route failed: its neighbour and FDB entry were withdrawn, as flannel rolls back.
        // The failure is counted when the batch returns, which may be a moment after the rollback shows in the kernel.
        await WaitUntilAsync(() => node.HasNothingFor(3) && node.Meters.Sum("flannel.backend.peer.failures") >= 1, "peer 3 is rolled back and counted");

        // Once the kernel accepts it, the error-triggered retry programs it without waiting for the 10 s tick.
        fault.Dispose();
        // The pass is counted after its batch returns, which may be a moment after the objects appear.
        await node.WaitAdvancingAsync(
            () => node.IsProgrammed(3) && node.Meters.Sum("flannel.backend.reconciliations", "reason", "retry") >= 1,
            TimeSpan.FromMilliseconds(250),
            "peer 3 is programmed on retry");
    }

    [Fact]
    public async Task A_lease_with_unusable_backend_data_is_skipped_and_the_others_are_programmed()
    {
        await using VxlanHarness node = await StartAsync();
        Lease bad = Peer(3) with { Attributes = Peer(3).Attributes with { BackendData = """{"VNI":1,"VtepMAC":"not-a-mac"}""" } };

        await node.SendAsync(Added(Peer(2)), Added(bad), Added(Peer(4)));
        await WaitUntilAsync(() => node.IsProgrammed(2) && node.IsProgrammed(4), "the good peers are programmed");

        Assert.True(node.HasNothingFor(3));
    }

    [Fact]
    public async Task DirectRouting_routes_on_link_peers_via_their_address_and_tunnels_the_rest()
    {
        await using VxlanHarness node = await StartAsync(
            """{"Type":"vxlan","DirectRouting":true}""",
            prepare: (netlink, eth0) => netlink.AddForeignRoute(new RouteSpec
            {
                Destination = IPNetwork.Parse("0.0.0.0/0"),
                Gateway = IPAddress.Parse("198.18.0.254"),
                LinkIndex = eth0.Index,
            }));

        await node.SendAsync(Added(Peer(2)), Added(Peer(3, publicIP: "203.0.113.3")));
        await WaitUntilAsync(() => node.HasRoute(2) && node.IsProgrammed(3, publicIP: "203.0.113.3"), "both peers are routed");

        RouteInfo direct = Assert.Single(node.Netlink.Routes, r => r.Destination == SubnetOf(2));
        Assert.Equal(IPAddress.Parse("198.18.0.2"), direct.Gateway);
        Assert.Equal(node.Underlay.Index, direct.LinkIndex);
        Assert.DoesNotContain(node.Netlink.Neighbors, n => n.Address.Equals(IPAddress.Parse("10.244.2.0")));
        Assert.DoesNotContain(node.Netlink.FdbEntries, e => e.MacAddress == MacOf(2));

        // The underlay changes without a lease event (peer 3's network becomes on-link): a resync decides again.
        node.Netlink.AddForeignRoute(new RouteSpec { Destination = IPNetwork.Parse("203.0.113.0/24"), LinkIndex = node.Underlay.Index });
        await node.WaitAdvancingAsync(
            () => node.Netlink.Routes.Any(r => r.Destination == SubnetOf(3) && Equals(r.Gateway, IPAddress.Parse("203.0.113.3")) && r.LinkIndex == node.Underlay.Index),
            TimeSpan.FromSeconds(1),
            "peer 3 is routed directly");
    }

    [Fact]
    public async Task Nexthop_mode_programs_one_nexthop_object_per_peer_and_routes_by_id()
    {
        await using VxlanHarness node = await StartAsync(mode: VxlanRouteMode.NexthopObjects);

        await node.SendAsync(Added(Peer(2)), Added(Peer(3)));
        await WaitUntilAsync(() => node.HasRoute(2) && node.HasRoute(3), "routes exist");

        NexthopInfo nexthop = Assert.Single(node.Netlink.Nexthops, n => Equals(n.Gateway, IPAddress.Parse("10.244.2.0")));
        Assert.Equal(0x0AF40200u, nexthop.Id); // the gateway address: stable across restarts
        Assert.True(nexthop.OnLink);
        Assert.Equal(node.Device.Index, nexthop.LinkIndex);
        Assert.Equal(RouteDefaults.ProtocolFlannel, nexthop.Protocol);
        RouteInfo route = Assert.Single(node.Netlink.Routes, r => r.Destination == SubnetOf(2));
        Assert.Equal(nexthop.Id, route.NexthopId);
        Assert.True(node.HasNeighbor(2));
        Assert.True(node.HasFdb(MacOf(2), "198.18.0.2"));

        await node.SendAsync(Removed(Peer(2)));
        await WaitUntilAsync(() => !node.Netlink.Nexthops.Any(n => n.Id == 0x0AF40200u) && !node.HasRoute(2), "peer 2's nexthop and route are gone");
        Assert.True(node.HasRoute(3));
    }

    [Fact]
    public async Task Nexthop_mode_never_takes_an_id_someone_else_holds()
    {
        await using VxlanHarness node = await StartAsync(
            mode: VxlanRouteMode.NexthopObjects,
            prepare: (netlink, eth0) => netlink.ReplaceNexthopAsync(
                new NexthopSpec { Id = 0x0AF40200u, Gateway = IPAddress.Parse("198.18.0.254"), LinkIndex = eth0.Index, Protocol = RouteDefaults.ProtocolBoot },
                CancellationToken.None).AsTask().GetAwaiter().GetResult());

        await node.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => node.HasRoute(2), "route exists");

        NexthopInfo foreign = Assert.Single(node.Netlink.Nexthops, n => n.Id == 0x0AF40200u);
        Assert.Equal(IPAddress.Parse("198.18.0.254"), foreign.Gateway);
        RouteInfo route = Assert.Single(node.Netlink.Routes, r => r.Destination == SubnetOf(2));
        Assert.NotEqual(0x0AF40200u, route.NexthopId);
    }
}
