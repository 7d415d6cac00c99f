using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Flannel.Netlink;
using Flannel.Testing;
using Flannel.Testing.Namespaces;
using Flannel.Agent.Traffic;

namespace Flannel.IntegrationTests.Netlink;

/// <summary>
/// RtNetlink against the real kernel, each test in namespaces it creates and always deletes. The node under
/// test ("host") reaches its peer over a veth underlay in 198.18.0.0/24 with MTU 1500.
/// </summary>
public sealed class KernelTests
{
    private static readonly MacAddress HostMac = MacAddress.Parse("0a:58:0a:f4:00:01");
    private static readonly MacAddress PeerMac = MacAddress.Parse("0a:58:0a:f4:01:02");
    private static readonly IPAddress HostUnderlay = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress PeerUnderlay = IPAddress.Parse("198.18.0.2");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Vxlan_device_route_neighbour_and_fdb_look_exactly_as_flannel_makes_them()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using var peer = await NetworkNamespace.CreateAsync();
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);

        LinkInfo underlay = await netlink.GetLinkAsync("veth0", Ct) ?? throw new InvalidOperationException("veth0 missing");
        Assert.Equal(1500, underlay.Mtu);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(
            new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = HostUnderlay, UnderlayIndex = underlay.Index, Mtu = underlay.Mtu - 50, Address = HostMac },
            Ct);
        await netlink.EnsureAddressAsync(vxlan.Index, IPNetwork.Parse("10.244.0.0/32"), IPNetwork.Parse("10.244.0.0/16"), Ct);
        await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);

        // Per remote lease, in flannel's order: neighbour, FDB entry, then the route.
        await netlink.ReplaceNeighborAsync(new NeighborSpec { LinkIndex = vxlan.Index, Address = IPAddress.Parse("10.244.1.0"), LinkLayerAddress = PeerMac }, Ct);
        await netlink.ReplaceFdbEntryAsync(new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = PeerMac, Destination = PeerUnderlay }, Ct);
        await netlink.ReplaceRouteAsync(new RouteSpec { Destination = IPNetwork.Parse("10.244.1.0/24"), Gateway = IPAddress.Parse("10.244.1.0"), LinkIndex = vxlan.Index, OnLink = true }, Ct);

        // What iproute2 shows.
        string details = await host.RunCheckedAsync("ip", "-d", "link", "show", "flannel.1");
        Assert.Contains("mtu 1450", details, StringComparison.Ordinal);
        Assert.Contains($"link/ether {HostMac}", details, StringComparison.Ordinal);
        Assert.Contains("vxlan id 1 local 198.18.0.1 dev veth0 srcport 0 0 dstport 8472 nolearning", details, StringComparison.Ordinal);

        JsonElement link = (await host.IpJsonAsync("ip", "-d", "link", "show", "flannel.1"))[0];
        Assert.Equal(1450, link.GetProperty("mtu").GetInt32());
        JsonElement data = link.GetProperty("linkinfo").GetProperty("info_data");
        Assert.Equal("vxlan", link.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal(1, data.GetProperty("id").GetInt32());
        Assert.Equal("198.18.0.1", data.GetProperty("local").GetString());
        Assert.Equal("veth0", data.GetProperty("link").GetString());
        Assert.Equal(8472, data.GetProperty("port").GetInt32());
        Assert.False(data.GetProperty("learning").GetBoolean());

        JsonElement routes = await host.IpJsonAsync("ip", "route", "show", "dev", "flannel.1");
        JsonElement route = Assert.Single(routes.EnumerateArray());
        Assert.Equal("10.244.1.0/24", route.GetProperty("dst").GetString());
        Assert.Equal("10.244.1.0", route.GetProperty("gateway").GetString());
        Assert.Contains("onlink", route.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal("10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", (await host.RunCheckedAsync("ip", "route", "show", "dev", "flannel.1")).Replace(" dev flannel.1", string.Empty, StringComparison.Ordinal).Trim().Replace("via 10.244.1.0", "via 10.244.1.0 dev flannel.1", StringComparison.Ordinal));
        Assert.Contains("10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", await host.RunCheckedAsync("ip", "route"), StringComparison.Ordinal);

        JsonElement neighbour = Assert.Single((await host.IpJsonAsync("ip", "neigh", "show", "dev", "flannel.1")).EnumerateArray());
        Assert.Equal("10.244.1.0", neighbour.GetProperty("dst").GetString());
        Assert.Equal(PeerMac.ToString(), neighbour.GetProperty("lladdr").GetString());
        Assert.Contains("PERMANENT", neighbour.GetProperty("state").EnumerateArray().Select(s => s.GetString()));
        Assert.Contains($"10.244.1.0 lladdr {PeerMac} PERMANENT", await host.RunCheckedAsync("ip", "neigh", "show", "dev", "flannel.1"), StringComparison.Ordinal);

        JsonElement fdb = Assert.Single((await host.IpJsonAsync("bridge", "fdb", "show", "dev", "flannel.1")).EnumerateArray(), e => e.GetProperty("mac").GetString() == PeerMac.ToString());
        Assert.Equal("198.18.0.2", fdb.GetProperty("dst").GetString());
        Assert.Equal("permanent", fdb.GetProperty("state").GetString());
        Assert.Contains($"{PeerMac} dst 198.18.0.2 self permanent", await host.RunCheckedAsync("bridge", "fdb", "show", "dev", "flannel.1"), StringComparison.Ordinal);

        // What our own dumps show.
        LinkInfo read = await netlink.GetLinkAsync("flannel.1", Ct) ?? throw new InvalidOperationException("flannel.1 missing");
        Assert.Equal("vxlan", read.Kind);
        Assert.Equal(1450, read.Mtu);
        Assert.Equal(HostMac, read.Address);
        Assert.True(read.IsUp);
        Assert.NotNull(read.Vxlan);
        Assert.Equal(1u, read.Vxlan.Vni);
        Assert.Equal(HostUnderlay, read.Vxlan.Local);
        Assert.Equal(underlay.Index, read.Vxlan.UnderlayIndex);
        Assert.Equal(8472, read.Vxlan.Port);
        Assert.False(read.Vxlan.Learning);

        RouteInfo ourRoute = Assert.Single(await netlink.ListRoutesAsync(new RouteFilter { Family = AddressFamily.InterNetwork, LinkIndex = vxlan.Index }, Ct));
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), ourRoute.Destination);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), ourRoute.Gateway);
        Assert.True(ourRoute.OnLink);
        Assert.Equal(RouteDefaults.MainTable, ourRoute.Table);
        Assert.Equal(RouteDefaults.ProtocolBoot, ourRoute.Protocol);

        NeighborInfo ourNeighbour = Assert.Single(await netlink.ListNeighborsAsync(vxlan.Index, AddressFamily.InterNetwork, Ct));
        Assert.Equal(IPAddress.Parse("10.244.1.0"), ourNeighbour.Address);
        Assert.Equal(PeerMac, ourNeighbour.LinkLayerAddress);
        Assert.True(ourNeighbour.IsPermanent);

        FdbEntryInfo ourFdb = Assert.Single(await netlink.ListFdbEntriesAsync(vxlan.Index, Ct), e => e.MacAddress == PeerMac);
        Assert.Equal(PeerUnderlay, ourFdb.Destination);
        Assert.True(ourFdb.IsPermanent);
        Assert.Equal(NeighborFlags.Self, ourFdb.Flags & NeighborFlags.Self);

        AddressInfo address = Assert.Single(await netlink.ListAddressesAsync(vxlan.Index, AddressFamily.InterNetwork, Ct));
        Assert.Equal(IPNetwork.Parse("10.244.0.0/32"), address.Address);

        // A new lease replaces the old address within the network.
        await netlink.EnsureAddressAsync(vxlan.Index, IPNetwork.Parse("10.244.5.0/32"), IPNetwork.Parse("10.244.0.0/16"), Ct);
        Assert.Equal(IPNetwork.Parse("10.244.5.0/32"), Assert.Single(await netlink.ListAddressesAsync(vxlan.Index, AddressFamily.InterNetwork, Ct)).Address);
    }

    [Fact]
    public async Task An_incompatible_vxlan_device_is_replaced()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await host.RunCheckedAsync("ip", "link", "add", "flannel.1", "type", "vxlan", "id", "7", "dstport", "8472");
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo before = await netlink.GetLinkAsync("flannel.1", Ct) ?? throw new InvalidOperationException();
        Assert.Equal(7u, before.Vxlan?.Vni);

        // The reuse policy is the VXLAN backend's (VxlanCompatibility): an incompatible device is deleted and recreated.
        var device = new Flannel.Backends.Vxlan.VxlanDevice(AddressFamily.InterNetwork, 1, new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Mtu = 1450 }, MacAddress.NewRandomLocal());
        LinkInfo after = await device.EnsureAsync(netlink, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, Ct);

        Assert.Equal(1u, after.Vxlan?.Vni);
        Assert.Contains("vxlan id 1 ", await host.RunCheckedAsync("ip", "-d", "link", "show", "flannel.1"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_with_one_failing_operation_reports_exactly_that_one()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1 }, Ct);
        await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);

        var batch = new NetlinkBatch();
        for (int i = 1; i <= 50; i++)
        {
            var mac = MacAddress.Parse($"0a:58:0a:f4:{i:x2}:01");
            var gateway = IPAddress.Parse($"10.244.{i}.0");
            batch.ReplaceNeighbor(new NeighborSpec { LinkIndex = vxlan.Index, Address = gateway, LinkLayerAddress = mac })
                .ReplaceFdbEntry(new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = mac, Destination = IPAddress.Parse($"198.18.1.{i}") })
                .ReplaceRoute(new RouteSpec { Destination = new IPNetwork(gateway, 24), Gateway = gateway, LinkIndex = i == 25 ? 9999 : vxlan.Index, OnLink = true });
        }

        NetlinkBatchResult result = await netlink.ApplyAsync(batch, Ct);

        Assert.Equal(150, result.Count);
        Assert.Equal(1, result.FailedCount);
        int failed = Enumerable.Range(0, result.Count).Single(i => result[i] is not null);
        Assert.Equal((24 * 3) + 2, failed);
        NetlinkException error = result[failed]!;
        Assert.Equal("RTM_NEWROUTE", error.Operation);
        Assert.True(error.IsNotFound, error.Message);
        Assert.Contains("10.244.25.0/24", error.Message, StringComparison.Ordinal);
        Assert.Equal(49, (await netlink.ListRoutesAsync(new RouteFilter { LinkIndex = vxlan.Index, Family = AddressFamily.InterNetwork }, Ct)).Count);
        Assert.Equal(50, (await netlink.ListNeighborsAsync(vxlan.Index, AddressFamily.InterNetwork, Ct)).Count);
        Assert.Equal(50, (await netlink.ListFdbEntriesAsync(vxlan.Index, Ct)).Count(e => e.Destination is not null));

        // Deleting everything in one batch, twice: the second time every operation reports "not found".
        var delete = new NetlinkBatch();
        for (int i = 1; i <= 50; i++)
        {
            var gateway = IPAddress.Parse($"10.244.{i}.0");
            delete.DeleteRoute(new RouteSpec { Destination = new IPNetwork(gateway, 24), Gateway = gateway, LinkIndex = vxlan.Index })
                .DeleteNeighbor(new NeighborSpec { LinkIndex = vxlan.Index, Address = gateway });
        }

        NetlinkBatchResult first = await netlink.ApplyAsync(delete, Ct);
        Assert.Equal(1, first.FailedCount); // the route that was never created
        NetlinkBatchResult second = await netlink.ApplyAsync(delete, Ct);
        Assert.Equal(100, second.FailedCount);
        Assert.All(second.Errors, e => Assert.True(e!.IsNotFound, e.Message));
    }

    [Fact]
    public async Task Errors_carry_operation_errno_and_extended_ack_and_distinguish_exists_from_not_found()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo bridge = await netlink.CreateLinkAsync(new LinkSpec { Name = "br0", Kind = LinkKind.Bridge }, Ct);

        await netlink.AddAddressAsync(bridge.Index, IPNetwork.Parse("10.244.0.0/32"), Ct);
        NetlinkException exists = await Assert.ThrowsAsync<NetlinkException>(async () => await netlink.AddAddressAsync(bridge.Index, IPNetwork.Parse("10.244.0.0/32"), Ct));
        Assert.True(exists.IsExists);
        Assert.Equal("EEXIST", exists.ErrorName);
        Assert.Equal("RTM_NEWADDR", exists.Operation);

        NetlinkException missing = await Assert.ThrowsAsync<NetlinkException>(async () =>
            await netlink.DeleteRouteAsync(new RouteSpec { Destination = IPNetwork.Parse("10.99.0.0/24"), LinkIndex = bridge.Index }, Ct));
        Assert.True(missing.IsNotFound);
        Assert.False(missing.IsExists);
        Assert.Equal("RTM_DELROUTE", missing.Operation);
        Assert.Contains("10.99.0.0/24", missing.Message, StringComparison.Ordinal);

        NetlinkException noNexthop = await Assert.ThrowsAsync<NetlinkException>(async () =>
            await netlink.ReplaceRouteAsync(new RouteSpec { Destination = IPNetwork.Parse("10.98.0.0/24"), NexthopId = 4242 }, Ct));
        Assert.False(string.IsNullOrEmpty(noNexthop.ExtendedAckMessage), noNexthop.Message);
        Assert.Contains(noNexthop.ExtendedAckMessage!, noNexthop.Message, StringComparison.Ordinal);

        Assert.Null(await netlink.GetLinkAsync("nope0", Ct));
        Assert.Null(await netlink.GetLinkAsync(9999, Ct));
    }

    [Fact]
    public async Task Nexthop_objects_and_routes_using_them()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1 }, Ct);
        await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);

        await netlink.ReplaceNexthopAsync(new NexthopSpec { Id = 7, Gateway = IPAddress.Parse("10.244.1.0"), LinkIndex = vxlan.Index, OnLink = true }, Ct);
        await netlink.ReplaceRouteAsync(new RouteSpec { Destination = IPNetwork.Parse("10.244.1.0/24"), NexthopId = 7, Protocol = RouteDefaults.ProtocolFlannel }, Ct);

        NexthopInfo nexthop = Assert.Single(await netlink.ListNexthopsAsync(RouteDefaults.ProtocolFlannel, Ct));
        Assert.Equal(7u, nexthop.Id);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), nexthop.Gateway);
        Assert.Equal(vxlan.Index, nexthop.LinkIndex);
        Assert.True(nexthop.OnLink);
        RouteInfo route = Assert.Single(await netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, Ct));
        Assert.Equal(7u, route.NexthopId);
        Assert.Contains("10.244.1.0/24 nhid 7", await host.RunCheckedAsync("ip", "route"), StringComparison.Ordinal);

        await netlink.DeleteNexthopAsync(7, Ct);
        Assert.Empty(await netlink.ListNexthopsAsync(null, Ct));
        Assert.Empty(await netlink.ListRoutesAsync(new RouteFilter { Protocol = RouteDefaults.ProtocolFlannel }, Ct)); // the kernel removes routes with their nexthop
    }

    [Fact]
    public async Task Deleting_a_link_is_observed_as_a_notification()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1 }, Ct);

        using var watching = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        watching.CancelAfter(TimeSpan.FromSeconds(30));
        await using IAsyncEnumerator<NetlinkNotification> events = netlink.WatchAsync(NetlinkNotificationGroups.Link, watching.Token).GetAsyncEnumerator(watching.Token);
        ValueTask<bool> next = events.MoveNextAsync(); // subscribes, then waits for the first event

        await host.RunCheckedAsync("ip", "link", "del", "flannel.1");

        while (true)
        {
            Assert.True(await next);
            NetlinkNotification notification = events.Current;
            if (notification.Kind == NetlinkNotificationKind.LinkDeleted)
            {
                Assert.Equal("flannel.1", notification.Link?.Name);
                Assert.Equal(vxlan.Index, notification.Link?.Index);
                break;
            }

            next = events.MoveNextAsync();
        }
    }

    [Fact]
    public async Task Two_namespaces_are_programmed_from_one_process()
    {
        Privileged.RequireRoot();
        await using var a = await NetworkNamespace.CreateAsync();
        await using var b = await NetworkNamespace.CreateAsync();
        await a.ConnectAsync(b, "veth0", "198.18.0.1/24", "veth0", "198.18.0.2/24");
        await using RtNetlink netA = RtNetlink.OpenInNamespace(a.Name);
        await using RtNetlink netB = RtNetlink.OpenInNamespace(b.Path);

        async Task ProgramAsync(RtNetlink netlink, IPAddress local, string ownSubnet, string peerSubnet, IPAddress peerUnderlay)
        {
            LinkInfo underlay = await netlink.GetLinkAsync("veth0", Ct) ?? throw new InvalidOperationException();
            // The MAC goes in with the device: changing it later flushes the device's neighbours (NETDEV_CHANGEADDR).
            MacAddress own = local.Equals(HostUnderlay) ? HostMac : PeerMac;
            LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = local, UnderlayIndex = underlay.Index, Mtu = 1450, Address = own }, Ct);
            await netlink.EnsureAddressAsync(vxlan.Index, IPNetwork.Parse(ownSubnet + "/32"), IPNetwork.Parse("10.244.0.0/16"), Ct);
            await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);
            var peerVtep = IPAddress.Parse(peerSubnet);
            await netlink.ApplyAsync(
                new NetlinkBatch()
                    .ReplaceNeighbor(new NeighborSpec { LinkIndex = vxlan.Index, Address = peerVtep, LinkLayerAddress = local.Equals(HostUnderlay) ? PeerMac : HostMac })
                    .ReplaceFdbEntry(new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = local.Equals(HostUnderlay) ? PeerMac : HostMac, Destination = peerUnderlay })
                    .ReplaceRoute(new RouteSpec { Destination = new IPNetwork(peerVtep, 24), Gateway = peerVtep, LinkIndex = vxlan.Index, OnLink = true }),
                Ct);
        }

        await Task.WhenAll(
            ProgramAsync(netA, HostUnderlay, "10.244.0.0", "10.244.1.0", PeerUnderlay),
            ProgramAsync(netB, PeerUnderlay, "10.244.1.0", "10.244.0.0", HostUnderlay));

        Assert.Contains("10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink", await a.RunCheckedAsync("ip", "route"), StringComparison.Ordinal);
        Assert.Contains("10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink", await b.RunCheckedAsync("ip", "route"), StringComparison.Ordinal);
        Assert.Contains("vxlan id 1 local 198.18.0.1 dev veth0", await a.RunCheckedAsync("ip", "-d", "link", "show", "flannel.1"), StringComparison.Ordinal);
        Assert.Contains("vxlan id 1 local 198.18.0.2 dev veth0", await b.RunCheckedAsync("ip", "-d", "link", "show", "flannel.1"), StringComparison.Ordinal);

        // The overlay works end to end: a ping from one node's flannel address reaches the other's.
        ProcessResult ping = await a.RunAsync("ping", "-c", "1", "-W", "5", "-I", "10.244.0.0", "10.244.1.0");
        Assert.True(ping.ExitCode == 0, ping.StandardOutput + ping.StandardError);
    }

    [Fact]
    public async Task Sysctls_are_written_inside_the_namespace()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        await netlink.CreateLinkAsync(new LinkSpec { Name = "br0", Kind = LinkKind.Bridge }, Ct);
        string rootValue = File.ReadAllText("/proc/sys/net/ipv4/conf/all/forwarding").Trim();
        string wanted = rootValue == "1" ? "0" : "1";

        await ProcSysctl.InNamespace(host.Name).WriteAsync("net/ipv4/conf/all/forwarding", wanted, Ct);
        await ProcSysctl.InNamespace(host.Name).WriteAsync("net/ipv6/conf/br0/accept_ra", "0", Ct);

        Assert.Equal(wanted, (await host.RunCheckedAsync("cat", "/proc/sys/net/ipv4/conf/all/forwarding")).Trim());
        Assert.Equal("0", (await host.RunCheckedAsync("cat", "/proc/sys/net/ipv6/conf/br0/accept_ra")).Trim());
        Assert.Equal(rootValue, File.ReadAllText("/proc/sys/net/ipv4/conf/all/forwarding").Trim());
    }

    [Fact]
    public async Task A_veth_peer_is_created_directly_in_another_namespace()
    {
        Privileged.RequireRoot();
        await using var a = await NetworkNamespace.CreateAsync();
        await using var b = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(a.Name);

        LinkInfo veth = await netlink.CreateLinkAsync(new LinkSpec { Name = "veth-a", Kind = LinkKind.Veth, PeerName = "veth-b", PeerNamespacePath = b.Name, Mtu = 1400 }, Ct);

        Assert.Equal("veth", veth.Kind);
        Assert.Equal(1400, veth.Mtu);
        Assert.Null(await netlink.GetLinkAsync("veth-b", Ct));
        Assert.Contains("veth-b", await b.RunCheckedAsync("ip", "link", "show", "veth-b"), StringComparison.Ordinal);
        Assert.Contains(await netlink.ListLinksAsync(Ct), l => l.Name == "lo");
    }

    [Fact]
    public async Task An_ipv6_vxlan_device_with_ipv6_peers_as_flannel_makes_them()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using var peer = await NetworkNamespace.CreateAsync();
        await host.ConnectAsync(peer, "veth0", "198.18.0.1/24", "veth1", "198.18.0.2/24");
        await host.RunCheckedAsync("ip", "-6", "addr", "add", "fd00:18::1/64", "dev", "veth0", "nodad");
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Path);
        LinkInfo underlay = await netlink.GetLinkAsync("veth0", Ct) ?? throw new InvalidOperationException();

        // 70 bytes of overhead on an IPv6 underlay (the project's decision; the kernel refuses 1450 here).
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(
            new VxlanLinkSpec { Name = "flannel-v6.1", Vni = 1, Local = IPAddress.Parse("fd00:18::1"), UnderlayIndex = underlay.Index, Mtu = 1430, Address = HostMac },
            Ct);
        await ProcSysctl.InNamespace(host.Name).WriteAsync("net/ipv6/conf/flannel-v6.1/accept_ra", "0", Ct);
        await netlink.EnsureAddressAsync(vxlan.Index, IPNetwork.Parse("fd10:244::/128"), IPNetwork.Parse("fd10:244::/56"), Ct);
        await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);
        var gateway = IPAddress.Parse("fd10:244:1::");
        NetlinkBatchResult result = await netlink.ApplyAsync(
            new NetlinkBatch()
                .ReplaceNeighbor(new NeighborSpec { LinkIndex = vxlan.Index, Address = gateway, LinkLayerAddress = PeerMac })
                .ReplaceFdbEntry(new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = PeerMac, Destination = IPAddress.Parse("fd00:18::2") })
                .ReplaceRoute(new RouteSpec { Destination = IPNetwork.Parse("fd10:244:1::/64"), Gateway = gateway, LinkIndex = vxlan.Index, OnLink = true }),
            Ct);

        Assert.True(result.AllSucceeded, string.Join("; ", result.Errors.Where(e => e is not null).Select(e => e!.Message)));
        Assert.Contains("vxlan id 1 local fd00:18::1 dev veth0 srcport 0 0 dstport 8472 nolearning", await host.RunCheckedAsync("ip", "-d", "link", "show", "flannel-v6.1"), StringComparison.Ordinal);
        Assert.Equal("0", (await host.RunCheckedAsync("cat", "/proc/sys/net/ipv6/conf/flannel-v6.1/accept_ra")).Trim());
        JsonElement route = Assert.Single((await host.IpJsonAsync("ip", "-6", "route", "show", "fd10:244:1::/64")).EnumerateArray());
        Assert.Equal("fd10:244:1::", route.GetProperty("gateway").GetString());
        Assert.Equal("flannel-v6.1", route.GetProperty("dev").GetString());
        Assert.Contains("onlink", route.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        Assert.Contains($"fd10:244:1:: lladdr {PeerMac} PERMANENT", await host.RunCheckedAsync("ip", "-6", "neigh", "show", "dev", "flannel-v6.1"), StringComparison.Ordinal);
        Assert.Contains($"{PeerMac} dst fd00:18::2 self permanent", await host.RunCheckedAsync("bridge", "fdb", "show", "dev", "flannel-v6.1"), StringComparison.Ordinal);

        LinkInfo read = await netlink.GetLinkAsync(vxlan.Index, Ct) ?? throw new InvalidOperationException();
        Assert.Equal(IPAddress.Parse("fd00:18::1"), read.Vxlan?.Local);
        RouteInfo ours = Assert.Single(await netlink.ListRoutesAsync(new RouteFilter { Family = AddressFamily.InterNetworkV6, LinkIndex = vxlan.Index, Protocol = RouteDefaults.ProtocolBoot }, Ct));
        Assert.Equal(IPNetwork.Parse("fd10:244:1::/64"), ours.Destination);
        Assert.True(ours.OnLink);
        Assert.Contains(await netlink.ListNeighborsAsync(vxlan.Index, AddressFamily.InterNetworkV6, Ct), n => n.Address.Equals(gateway) && n.IsPermanent);
        Assert.Contains(await netlink.ListFdbEntriesAsync(vxlan.Index, Ct), e => e.MacAddress == PeerMac && IPAddress.Parse("fd00:18::2").Equals(e.Destination));
        Assert.Contains(await netlink.ListAddressesAsync(vxlan.Index, AddressFamily.InterNetworkV6, Ct), a => a.Address == IPNetwork.Parse("fd10:244::/128"));
    }

    [Fact]
    public async Task A_thousand_peers_are_programmed_dumped_and_deleted_in_chunked_batches()
    {
        Privileged.RequireRoot();
        await using var host = await NetworkNamespace.CreateAsync();
        await using RtNetlink netlink = RtNetlink.OpenInNamespace(host.Name);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1 }, Ct);
        await netlink.SetLinkUpAsync(vxlan.Index, true, Ct);
        var add = new NetlinkBatch(3000);
        var delete = new NetlinkBatch(3000);
        for (int i = 0; i < 1000; i++)
        {
            var mac = new MacAddress([0x0a, 0x58, 0x0a, (byte)(i >> 8), (byte)i, 0x01]);
            var gateway = new IPAddress(new byte[] { 10, (byte)(100 + (i >> 8)), (byte)i, 0 });
            var neighbor = new NeighborSpec { LinkIndex = vxlan.Index, Address = gateway, LinkLayerAddress = mac };
            var fdb = new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = mac, Destination = new IPAddress(new byte[] { 198, 18, (byte)(i >> 8), (byte)i }) };
            var route = new RouteSpec { Destination = new IPNetwork(gateway, 24), Gateway = gateway, LinkIndex = vxlan.Index, OnLink = true };
            add.ReplaceNeighbor(neighbor).ReplaceFdbEntry(fdb).ReplaceRoute(route);
            delete.DeleteRoute(route).DeleteFdbEntry(fdb).DeleteNeighbor(neighbor);
        }

        NetlinkBatchResult added = await netlink.ApplyAsync(add, Ct);

        Assert.True(added.AllSucceeded, added.Errors.FirstOrDefault(e => e is not null)?.Message);
        Assert.Equal(1000, (await netlink.ListRoutesAsync(new RouteFilter { LinkIndex = vxlan.Index, Family = AddressFamily.InterNetwork }, Ct)).Count);
        Assert.Equal(1000, (await netlink.ListNeighborsAsync(vxlan.Index, AddressFamily.InterNetwork, Ct)).Count);
        Assert.Equal(1000, (await netlink.ListFdbEntriesAsync(vxlan.Index, Ct)).Count(e => e.Destination is not null));

        NetlinkBatchResult deleted = await netlink.ApplyAsync(delete, Ct);

        Assert.True(deleted.AllSucceeded, deleted.Errors.FirstOrDefault(e => e is not null)?.Message);
        Assert.Empty(await netlink.ListRoutesAsync(new RouteFilter { LinkIndex = vxlan.Index, Family = AddressFamily.InterNetwork }, Ct));
        Assert.Empty(await netlink.ListNeighborsAsync(vxlan.Index, AddressFamily.InterNetwork, Ct));
        Assert.DoesNotContain(await netlink.ListFdbEntriesAsync(vxlan.Index, Ct), e => e.Destination is not null);
    }
}
