using System.Net;
using System.Net.Sockets;

namespace Flannel.Netlink;

/// <summary>
/// The kernel operations flannel's backends need, over rtnetlink. One instance is bound to one network
/// namespace for its whole life. Implemented by <c>RtNetlink</c> (a real socket) and by the in-memory
/// <c>FakeNetlink</c> in the test kit.
/// </summary>
/// <remarks>
/// Idempotency: <c>Replace…</c> calls create or overwrite; <c>Delete…</c> calls of an object that does not
/// exist throw <see cref="NetlinkException"/> with <see cref="NetlinkException.IsNotFound"/> set, so a caller
/// that wants "absent" treats that as success.
/// </remarks>
public interface INetlink : IAsyncDisposable
{
    // Links

    /// <summary>
    /// Ensures a vxlan device matching <paramref name="spec"/> exists and returns it. A compatible device
    /// (same VNI, local address, underlay link and port, learning and GBP settings) is reused; an incompatible
    /// one is deleted and recreated, as flannel does. MTU and MAC are then set when the spec gives them.
    /// </summary>
    ValueTask<LinkInfo> EnsureVxlanLinkAsync(VxlanLinkSpec spec, CancellationToken cancellationToken);

    /// <summary>Creates a link of a simple kind (bridge, dummy, veth) for tests and demos.</summary>
    ValueTask<LinkInfo> CreateLinkAsync(LinkSpec spec, CancellationToken cancellationToken);

    /// <summary>Returns the link named <paramref name="name"/>, or null.</summary>
    ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken);

    /// <summary>Returns the link with index <paramref name="index"/>, or null.</summary>
    ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken);

    /// <summary>Lists every link in the namespace.</summary>
    ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken);

    /// <summary>Deletes a link.</summary>
    ValueTask DeleteLinkAsync(int index, CancellationToken cancellationToken);

    /// <summary>Sets a link administratively up or down.</summary>
    ValueTask SetLinkUpAsync(int index, bool up, CancellationToken cancellationToken);

    /// <summary>Sets a link's MTU.</summary>
    ValueTask SetLinkMtuAsync(int index, int mtu, CancellationToken cancellationToken);

    /// <summary>Sets a link's hardware address.</summary>
    ValueTask SetLinkAddressAsync(int index, MacAddress address, CancellationToken cancellationToken);

    // Addresses

    /// <summary>
    /// Ensures <paramref name="address"/> is on the link. Other addresses of the same family on the link that
    /// lie inside <paramref name="replaceWithin"/> are removed first (flannel's <c>EnsureV4AddressOnLink</c>).
    /// </summary>
    ValueTask EnsureAddressAsync(int linkIndex, IPNetwork address, IPNetwork? replaceWithin, CancellationToken cancellationToken);

    /// <summary>Adds an address to a link.</summary>
    ValueTask AddAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken);

    /// <summary>Deletes an address from a link.</summary>
    ValueTask DeleteAddressAsync(int linkIndex, IPNetwork address, CancellationToken cancellationToken);

    /// <summary>Lists addresses, optionally of one link and one family.</summary>
    ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken);

    // Routes

    /// <summary>Creates or replaces a route (<c>ip route replace</c>).</summary>
    ValueTask ReplaceRouteAsync(RouteSpec route, CancellationToken cancellationToken);

    /// <summary>Deletes a route matching destination, table, and when given, gateway and link.</summary>
    ValueTask DeleteRouteAsync(RouteSpec route, CancellationToken cancellationToken);

    /// <summary>Dumps routes matching the filter.</summary>
    ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken);

    /// <summary>The route the kernel would use to reach <paramref name="destination"/> (<c>ip route get</c>), or null.</summary>
    ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken);

    // Neighbours and FDB

    /// <summary>Creates or replaces a permanent neighbour (<c>ip neigh replace IP lladdr MAC dev LINK nud permanent</c>).</summary>
    ValueTask ReplaceNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken);

    /// <summary>Deletes a neighbour.</summary>
    ValueTask DeleteNeighborAsync(NeighborSpec neighbor, CancellationToken cancellationToken);

    /// <summary>Dumps the neighbours of a link (family inet/inet6, not the FDB).</summary>
    ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken);

    /// <summary>Creates or replaces an FDB entry (<c>bridge fdb replace MAC dev LINK dst IP self permanent</c>).</summary>
    ValueTask ReplaceFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken);

    /// <summary>Deletes an FDB entry (MAC and destination).</summary>
    ValueTask DeleteFdbEntryAsync(FdbEntrySpec entry, CancellationToken cancellationToken);

    /// <summary>Dumps the FDB entries of a link (AF_BRIDGE neighbours).</summary>
    ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken);

    // Nexthop objects

    /// <summary>Creates or replaces a nexthop object (<c>ip nexthop replace id N via GW dev LINK onlink</c>).</summary>
    ValueTask ReplaceNexthopAsync(NexthopSpec nexthop, CancellationToken cancellationToken);

    /// <summary>Deletes a nexthop object by id.</summary>
    ValueTask DeleteNexthopAsync(uint id, CancellationToken cancellationToken);

    /// <summary>Dumps nexthop objects, optionally of one protocol.</summary>
    ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken);

    // Batching and notifications

    /// <summary>
    /// Sends every operation of the batch in as few system calls as possible and waits for every
    /// acknowledgement. One failing operation never hides the others' results: the result has one entry per
    /// operation, in order.
    /// </summary>
    ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken);

    /// <summary>
    /// Subscribes to link, address and route notifications (multicast groups) until cancelled, so that a
    /// backend notices its device being deleted or its routes being removed.
    /// </summary>
    IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, CancellationToken cancellationToken);

    /// <summary>
    /// Writes a sysctl under /proc/sys inside this instance's namespace, e.g.
    /// <c>net/ipv6/conf/flannel-v6.1/accept_ra</c> = <c>0</c>.
    /// </summary>
    ValueTask WriteSysctlAsync(string key, string value, CancellationToken cancellationToken);
}
