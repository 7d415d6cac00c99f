using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;

namespace Flannel.Testing.Conformance;

// Design note: FakeNetlink stands in for the kernel in every backend unit test, so where the two disagree the unit
// tests prove nothing. This suite states, once, the kernel behaviour backends rely on (keying, replace semantics,
// flags, "not found" on a second delete, nexthop objects taking their routes with them, one failure in a batch not
// hiding the others). The same cases run against FakeNetlink in the unit tests and against RtNetlink in a fresh
// network namespace in the integration tests. It needs no test framework: a failed expectation throws
// NetlinkConformanceException, which any framework reports as a failure.

/// <summary>
/// The <see cref="INetlink"/> conformance suite: kernel behaviour that backends depend on, as named cases. Run every
/// case against a fresh <see cref="INetlink"/> bound to an empty namespace (only <c>lo</c>): your fake, or
/// <see cref="RtNetlink"/> in a throwaway namespace (<see cref="Namespaces.NetworkNamespace"/>, root).
/// </summary>
/// <example>
/// <code>
/// [Theory, MemberData(nameof(Cases))]
/// public Task Fake_behaves_like_the_kernel(string name) =>
///     NetlinkConformance.RunAsync(name, new FakeNetlink(), TestContext.Current.CancellationToken);
/// public static TheoryData&lt;string&gt; Cases => new(NetlinkConformance.CaseNames);
/// </code>
/// </example>
public static class NetlinkConformance
{
    private static readonly IPAddress Underlay = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress PeerUnderlay = IPAddress.Parse("198.18.0.2");
    private static readonly IPAddress OtherPeerUnderlay = IPAddress.Parse("198.18.0.3");
    private static readonly MacAddress PeerMac = MacAddress.Parse("0a:58:0a:f4:01:01");
    private static readonly MacAddress OtherMac = MacAddress.Parse("0a:58:0a:f4:01:02");

    private static readonly Dictionary<string, Func<INetlink, CancellationToken, Task>> s_cases = new(StringComparer.Ordinal)
    {
        ["links"] = LinksAsync,
        ["addresses"] = AddressesAsync,
        ["routes"] = RoutesAsync,
        ["route-lookup"] = RouteLookupAsync,
        ["neighbors"] = NeighborsAsync,
        ["vxlan-and-fdb"] = VxlanAndFdbAsync,
        ["nexthops"] = NexthopsAsync,
        ["batch"] = BatchAsync,
    };

    /// <summary>The case names, in a stable order.</summary>
    public static IReadOnlyList<string> CaseNames { get; } = [.. s_cases.Keys];

    /// <summary>Runs case <paramref name="caseName"/> against <paramref name="netlink"/>, which must see an empty namespace.</summary>
    /// <exception cref="NetlinkConformanceException">The implementation does not behave like the kernel.</exception>
    /// <exception cref="ArgumentException">No such case.</exception>
    public static Task RunAsync(string caseName, INetlink netlink, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caseName);
        ArgumentNullException.ThrowIfNull(netlink);
        return s_cases.TryGetValue(caseName, out Func<INetlink, CancellationToken, Task>? run)
            ? run(netlink, cancellationToken)
            : throw new ArgumentException($"No conformance case '{caseName}'; the cases are: {string.Join(", ", CaseNames)}.", nameof(caseName));
    }

    private static async Task LinksAsync(INetlink netlink, CancellationToken ct)
    {
        // A bridge, not a dummy device: kernels here may lack the dummy module; bridge and veth are always there.
        LinkInfo bridge = await netlink.CreateLinkAsync(new LinkSpec { Name = "br0", Kind = LinkKind.Bridge }, ct);
        Expect(bridge.Kind == "bridge", $"a created bridge reports kind bridge, not {bridge.Kind}");
        Expect(!bridge.IsUp, "a new link is down");
        await ExpectErrorAsync(() => netlink.CreateLinkAsync(new LinkSpec { Name = "br0", Kind = LinkKind.Bridge }, ct).AsTask(), e => e.IsExists, "creating an existing link fails with EEXIST");

        await netlink.SetLinkMtuAsync(bridge.Index, 1400, ct);
        await netlink.SetLinkAddressAsync(bridge.Index, PeerMac, ct);
        await netlink.SetLinkUpAsync(bridge.Index, true, ct);
        LinkInfo changed = await netlink.GetLinkAsync(bridge.Index, ct) ?? throw Fail("the link vanished after it was changed");
        Expect(changed.Mtu == 1400 && changed.Address == PeerMac && changed.IsUp, $"MTU, MAC and up are applied (got mtu {changed.Mtu}, {changed.Address}, up={changed.IsUp})");
        Expect((await netlink.GetLinkAsync("br0", ct))?.Index == bridge.Index, "a link is found by name");
        Expect((await netlink.ListLinksAsync(ct)).Any(l => l.Name == "lo"), "the list of links includes lo");

        await netlink.DeleteLinkAsync(bridge.Index, ct);
        Expect(await netlink.GetLinkAsync("br0", ct) is null, "a deleted link is gone");
        await ExpectErrorAsync(() => netlink.DeleteLinkAsync(bridge.Index, ct).AsTask(), e => e.IsNotFound, "deleting a missing link fails as not found");
    }

    private static async Task AddressesAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        AddressInfo address = Single(await netlink.ListAddressesAsync(eth0.Index, AddressFamily.InterNetwork, ct), "the underlay's address");
        Expect(address.Local.Equals(Underlay) && address.Address == IPNetwork.Parse("198.18.0.0/24"), $"the address reads back as {Underlay}/24 (got {address.Local}, {address.Address})");
        Expect(address.Scope == RouteScope.Universe, $"a global address has universe scope (got {address.Scope})");
        RouteInfo prefix = Single(
            (await netlink.ListRoutesAsync(new RouteFilter { Family = AddressFamily.InterNetwork }, ct)).Where(r => r.Destination == IPNetwork.Parse("198.18.0.0/24")),
            "the prefix route of the address");
        Expect(prefix.LinkIndex == eth0.Index && prefix.Protocol == RouteDefaults.ProtocolKernel && prefix.Scope == RouteScope.Link && prefix.Gateway is null,
            $"an address on an up link adds a kernel prefix route with link scope (got {prefix})");

        // EnsureAddress replaces other addresses inside the given network, as flannel does with the lease address.
        await netlink.AddAddressAsync(eth0.Index, IPNetwork.Parse("10.244.1.0/32"), ct);
        IReadOnlyList<AddressInfo> removed = await netlink.EnsureAddressAsync(eth0.Index, IPNetwork.Parse("10.244.7.0/32"), IPNetwork.Parse("10.244.0.0/16"), ct);
        Expect(removed.Count == 1 && removed[0].Local.Equals(IPAddress.Parse("10.244.1.0")), "EnsureAddress removes the stale address within the network");
        IReadOnlyList<AddressInfo> now = await netlink.ListAddressesAsync(eth0.Index, AddressFamily.InterNetwork, ct);
        Expect(now.Count == 2 && now.Any(a => a.Local.Equals(IPAddress.Parse("10.244.7.0"))), $"the wanted address is added and the underlay's kept (got {string.Join(", ", now.Select(a => a.Address))})");

        await netlink.DeleteAddressAsync(eth0.Index, IPNetwork.Parse("10.244.7.0/32"), ct);
        await ExpectErrorAsync(() => netlink.DeleteAddressAsync(eth0.Index, IPNetwork.Parse("10.244.7.0/32"), ct).AsTask(), _ => true, "deleting a missing address fails");
    }

    private static async Task RoutesAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        var destination = IPNetwork.Parse("10.244.1.0/24");
        var via = new RouteSpec { Destination = destination, Gateway = PeerUnderlay, Protocol = RouteDefaults.ProtocolFlannel };
        await netlink.ReplaceRouteAsync(via, ct);
        RouteInfo route = Single(await OwnRoutesAsync(netlink, ct), "the route via a gateway");
        Expect(route.Destination == destination && Equals(route.Gateway, PeerUnderlay) && route.LinkIndex == eth0.Index,
            $"a gateway route resolves its link (got {route})");
        Expect(route.Scope == RouteScope.Universe && route.Type == RouteType.Unicast && route.Table == RouteDefaults.MainTable && !route.OnLink,
            $"a gateway route is universe, unicast, main table (got {route})");

        // The kernel keys a route by table and destination: a replace rewrites it in place.
        await netlink.ReplaceRouteAsync(via with { Gateway = OtherPeerUnderlay }, ct);
        route = Single(await OwnRoutesAsync(netlink, ct), "the replaced route");
        Expect(Equals(route.Gateway, OtherPeerUnderlay), "a replace rewrites the gateway in place");

        // An onlink route may use a gateway no route covers; without onlink the kernel refuses it.
        var onlinkDestination = IPNetwork.Parse("10.244.2.0/24");
        await ExpectErrorAsync(
            () => netlink.ReplaceRouteAsync(new RouteSpec { Destination = onlinkDestination, Gateway = IPAddress.Parse("10.244.2.0"), LinkIndex = eth0.Index, Protocol = RouteDefaults.ProtocolFlannel }, ct).AsTask(),
            _ => true, "a gateway that no route covers is refused without onlink");
        await netlink.ReplaceRouteAsync(new RouteSpec { Destination = onlinkDestination, Gateway = IPAddress.Parse("10.244.2.0"), LinkIndex = eth0.Index, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel }, ct);
        RouteInfo onlink = Single((await OwnRoutesAsync(netlink, ct)).Where(r => r.Destination == onlinkDestination), "the onlink route");
        Expect(onlink.OnLink && onlink.LinkIndex == eth0.Index, $"an onlink route reads back onlink on its link (got {onlink})");

        // A blackhole needs no link.
        var blackhole = new RouteSpec { Destination = IPNetwork.Parse("10.244.9.0/24"), Type = RouteType.Blackhole, Protocol = RouteDefaults.ProtocolFlannel };
        await netlink.ReplaceRouteAsync(blackhole, ct);
        RouteInfo dropped = Single((await OwnRoutesAsync(netlink, ct)).Where(r => r.Destination == blackhole.Destination), "the blackhole route");
        Expect(dropped.Type == RouteType.Blackhole && dropped.Gateway is null, $"a blackhole route reads back as a blackhole (got {dropped})");

        // A delete that names a gateway matches it too: naming the old one finds nothing.
        await ExpectErrorAsync(() => netlink.DeleteRouteAsync(via, ct).AsTask(), e => e.IsNotFound, "deleting a route via another gateway fails as not found");
        var current = via with { Gateway = OtherPeerUnderlay };
        await netlink.DeleteRouteAsync(current, ct);
        Expect(!(await OwnRoutesAsync(netlink, ct)).Any(r => r.Destination == destination), "a deleted route is gone");
        await ExpectErrorAsync(() => netlink.DeleteRouteAsync(current, ct).AsTask(), e => e.IsNotFound, "deleting a missing route fails as not found");
    }

    private static async Task RouteLookupAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        RouteInfo? direct = await netlink.GetRouteToAsync(IPAddress.Parse("198.18.0.7"), ct);
        Expect(direct is { Gateway: null } && direct.LinkIndex == eth0.Index, $"an address on the underlay is reached directly on it (got {direct})");
        Expect(await netlink.GetRouteToAsync(IPAddress.Parse("203.0.113.9"), ct) is null, "with no default route an outside address has no route");
        await netlink.ReplaceRouteAsync(new RouteSpec { Destination = IPNetwork.Parse("0.0.0.0/0"), Gateway = PeerUnderlay }, ct);
        RouteInfo? viaDefault = await netlink.GetRouteToAsync(IPAddress.Parse("203.0.113.9"), ct);
        Expect(viaDefault is not null && Equals(viaDefault.Gateway, PeerUnderlay) && viaDefault.LinkIndex == eth0.Index, $"the default route is used (got {viaDefault})");
    }

    private static async Task NeighborsAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        var neighbor = new NeighborSpec { LinkIndex = eth0.Index, Address = PeerUnderlay, LinkLayerAddress = PeerMac };
        await netlink.ReplaceNeighborAsync(neighbor, ct);
        NeighborInfo read = Single((await netlink.ListNeighborsAsync(eth0.Index, AddressFamily.InterNetwork, ct)).Where(n => n.Address.Equals(PeerUnderlay)), "the neighbour");
        Expect(read.LinkLayerAddress == PeerMac && read.IsPermanent, $"a replaced neighbour is permanent with its MAC (got {read.LinkLayerAddress}, {read.State})");

        // Keyed by link and address: a replace rewrites the MAC.
        await netlink.ReplaceNeighborAsync(neighbor with { LinkLayerAddress = OtherMac }, ct);
        read = Single((await netlink.ListNeighborsAsync(eth0.Index, AddressFamily.InterNetwork, ct)).Where(n => n.Address.Equals(PeerUnderlay)), "the replaced neighbour");
        Expect(read.LinkLayerAddress == OtherMac, "a replace rewrites the MAC in place");

        await netlink.DeleteNeighborAsync(neighbor, ct);
        Expect(!(await netlink.ListNeighborsAsync(eth0.Index, AddressFamily.InterNetwork, ct)).Any(n => n.Address.Equals(PeerUnderlay) && n.IsPermanent), "a deleted neighbour is gone");
        await ExpectErrorAsync(() => netlink.DeleteNeighborAsync(neighbor, ct).AsTask(), e => e.IsNotFound, "deleting a missing neighbour fails as not found");
    }

    private static async Task VxlanAndFdbAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        LinkInfo vxlan = await netlink.CreateVxlanLinkAsync(
            new VxlanLinkSpec { Name = "flannel.1", Vni = 1, Local = Underlay, UnderlayIndex = eth0.Index, Port = 8472, Mtu = 1450, Address = PeerMac },
            ct);
        Expect(vxlan.Kind == "vxlan" && vxlan.Vxlan is { Vni: 1, Port: 8472, Learning: false, Gbp: false } info && Equals(info.Local, Underlay) && info.UnderlayIndex == eth0.Index,
            $"the vxlan device reads back with its VNI, port, local address, underlay and no learning (got {vxlan.Vxlan})");
        Expect(vxlan.Mtu == 1450 && vxlan.Address == PeerMac, $"the MTU and MAC are applied (got {vxlan.Mtu}, {vxlan.Address})");
        await ExpectErrorAsync(() => netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 1 }, ct).AsTask(), e => e.IsExists, "creating an existing device fails with EEXIST");

        var entry = new FdbEntrySpec { LinkIndex = vxlan.Index, MacAddress = OtherMac, Destination = PeerUnderlay };
        await netlink.ReplaceFdbEntryAsync(entry, ct);
        FdbEntryInfo read = Single((await netlink.ListFdbEntriesAsync(vxlan.Index, ct)).Where(e => e.MacAddress == OtherMac), "the FDB entry");
        Expect(Equals(read.Destination, PeerUnderlay) && read.IsPermanent && (read.Flags & NeighborFlags.Self) != 0,
            $"an FDB entry is permanent, self, with its destination (got {read.Destination}, {read.State}, {read.Flags})");

        // The MAC keys the entry: a replace with a new destination rewrites it.
        await netlink.ReplaceFdbEntryAsync(entry with { Destination = OtherPeerUnderlay }, ct);
        read = Single((await netlink.ListFdbEntriesAsync(vxlan.Index, ct)).Where(e => e.MacAddress == OtherMac), "the replaced FDB entry");
        Expect(Equals(read.Destination, OtherPeerUnderlay), $"a replace rewrites the destination (got {read.Destination})");

        await netlink.DeleteFdbEntryAsync(entry with { Destination = OtherPeerUnderlay }, ct);
        Expect(!(await netlink.ListFdbEntriesAsync(vxlan.Index, ct)).Any(e => e.MacAddress == OtherMac), "a deleted FDB entry is gone");
        await ExpectErrorAsync(() => netlink.DeleteFdbEntryAsync(entry, ct).AsTask(), e => e.IsNotFound, "deleting a missing FDB entry fails as not found");

        // Deleting the device flushes what was on it.
        await netlink.ReplaceFdbEntryAsync(entry, ct);
        await netlink.DeleteLinkAsync(vxlan.Index, ct);
        Expect(await netlink.GetLinkAsync("flannel.1", ct) is null, "a deleted device is gone");
    }

    private static async Task NexthopsAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await UnderlayAsync(netlink, ct);
        var nexthop = new NexthopSpec { Id = 7, Gateway = IPAddress.Parse("10.244.1.0"), LinkIndex = eth0.Index, OnLink = true };
        await netlink.ReplaceNexthopAsync(nexthop, ct);
        NexthopInfo read = Single(await netlink.ListNexthopsAsync(RouteDefaults.ProtocolFlannel, ct), "the nexthop object");
        Expect(read.Id == 7 && Equals(read.Gateway, nexthop.Gateway) && read.LinkIndex == eth0.Index && read.OnLink, $"a nexthop object reads back (got {read})");

        var route = new RouteSpec { Destination = IPNetwork.Parse("10.244.1.0/24"), NexthopId = 7, Protocol = RouteDefaults.ProtocolFlannel };
        await netlink.ReplaceRouteAsync(route, ct);
        Expect(Single(await OwnRoutesAsync(netlink, ct), "the route via the nexthop").NexthopId == 7, "a route through a nexthop object reads back its id");
        await ExpectErrorAsync(
            () => netlink.ReplaceRouteAsync(route with { Destination = IPNetwork.Parse("10.244.2.0/24"), NexthopId = 8 }, ct).AsTask(),
            _ => true, "a route through a missing nexthop object is refused");

        // Deleting the object takes its routes with it.
        await netlink.DeleteNexthopAsync(7, ct);
        Expect((await netlink.ListNexthopsAsync(RouteDefaults.ProtocolFlannel, ct)).Count == 0, "a deleted nexthop object is gone");
        Expect((await OwnRoutesAsync(netlink, ct)).Count == 0, "the routes through a deleted nexthop object are gone");
        await ExpectErrorAsync(() => netlink.DeleteNexthopAsync(7, ct).AsTask(), e => e.IsNotFound, "deleting a missing nexthop object fails as not found");
    }

    private static async Task BatchAsync(INetlink netlink, CancellationToken ct)
    {
        await UnderlayAsync(netlink, ct);
        var batch = new NetlinkBatch()
            .ReplaceRoute(new RouteSpec { Destination = IPNetwork.Parse("10.244.1.0/24"), Gateway = PeerUnderlay, Protocol = RouteDefaults.ProtocolFlannel })
            .DeleteRoute(new RouteSpec { Destination = IPNetwork.Parse("10.244.5.0/24"), Protocol = RouteDefaults.ProtocolFlannel })
            .ReplaceRoute(new RouteSpec { Destination = IPNetwork.Parse("10.244.2.0/24"), Gateway = OtherPeerUnderlay, Protocol = RouteDefaults.ProtocolFlannel });
        NetlinkBatchResult result = await netlink.ApplyAsync(batch, ct);
        Expect(result.Count == 3 && result.FailedCount == 1, $"one result per operation, one failure (got {result.Count}, {result.FailedCount} failed)");
        Expect(result[0] is null && result[1] is { IsNotFound: true } && result[2] is null, "the failure is reported for exactly the failing operation");
        Expect((await OwnRoutesAsync(netlink, ct)).Count == 2, "the operations around a failure are applied");
    }

    /// <summary><c>eth0</c>: one end of a veth pair (both ends up, so it has carrier), with 198.18.0.1/24 (so 198.18.0.0/24 is directly reachable).</summary>
    private static async Task<LinkInfo> UnderlayAsync(INetlink netlink, CancellationToken ct)
    {
        LinkInfo eth0 = await netlink.CreateLinkAsync(new LinkSpec { Name = "eth0", Kind = LinkKind.Veth, PeerName = "eth0-peer" }, ct);
        LinkInfo peer = await netlink.GetLinkAsync("eth0-peer", ct) ?? throw Fail("creating a veth pair creates both ends");
        await netlink.SetLinkUpAsync(peer.Index, true, ct);
        await netlink.SetLinkUpAsync(eth0.Index, true, ct);
        await netlink.ApplyAsync(new AddressAdd(eth0.Index, Underlay, 24), ct);
        return await netlink.GetLinkAsync(eth0.Index, ct) ?? throw Fail("eth0 vanished");
    }

    private static async Task<IReadOnlyList<RouteInfo>> OwnRoutesAsync(INetlink netlink, CancellationToken ct) =>
        await netlink.ListRoutesAsync(new RouteFilter { Family = AddressFamily.InterNetwork, Protocol = RouteDefaults.ProtocolFlannel }, ct);

    private static T Single<T>(IEnumerable<T> items, string what)
    {
        List<T> list = [.. items];
        return list.Count == 1 ? list[0] : throw Fail($"expected exactly one {what}, found {list.Count}: {string.Join("; ", list)}");
    }

    private static void Expect(bool condition, string expectation)
    {
        if (!condition)
        {
            throw Fail(expectation);
        }
    }

    private static async Task ExpectErrorAsync(Func<Task> action, Func<NetlinkException, bool> matches, string expectation)
    {
        try
        {
            await action();
        }
        catch (NetlinkException error) when (matches(error))
        {
            return;
        }
        catch (NetlinkException error)
        {
            throw Fail($"{expectation}, but it failed with {error.ErrorName} ({error.Message})");
        }

        throw Fail($"{expectation}, but it succeeded");
    }

    private static NetlinkConformanceException Fail(string expectation) => new(expectation);
}

/// <summary>An <see cref="INetlink"/> implementation does not behave like the kernel.</summary>
public sealed class NetlinkConformanceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NetlinkConformanceException()
    {
    }

    /// <summary>Creates the exception with the expectation that failed.</summary>
    public NetlinkConformanceException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the expectation that failed and its cause.</summary>
    public NetlinkConformanceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
