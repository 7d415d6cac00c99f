using System.Net;
using System.Net.Sockets;

namespace Flannel.Netlink;

/// <summary>
/// rtnetlink, narrowly: one way to change the kernel (<see cref="ApplyAsync"/>, a batch of typed
/// <see cref="NetlinkOperation"/>s), the dumps and lookups a backend reconciles against, and notifications. One
/// instance is bound to one network namespace for its whole life. Implemented by <see cref="RtNetlink"/> (a real
/// socket) and by the in-memory <c>FakeNetlink</c> of Flannel.Testing, which a shared conformance suite proves
/// against the kernel.
/// </summary>
/// <remarks>
/// Single-object changes (<c>ReplaceRouteAsync</c>, <c>DeleteLinkAsync</c>, <c>CreateLinkAsync</c>, …) are extension
/// methods in <see cref="NetlinkExtensions"/> that apply a batch of one and throw its error. Idempotency: replaces
/// create or overwrite; deleting an object that does not exist fails with <see cref="NetlinkException.IsNotFound"/>
/// set, so a caller that wants "absent" treats that as success.
/// </remarks>
public interface INetlink : IAsyncDisposable
{
    /// <summary>
    /// Sends every operation of the batch in as few system calls as possible and waits for every acknowledgement.
    /// One failing operation never hides the others' results: the result has one entry per operation, in order.
    /// </summary>
    ValueTask<NetlinkBatchResult> ApplyAsync(NetlinkBatch batch, CancellationToken cancellationToken);

    /// <summary>Returns the link named <paramref name="name"/>, or null.</summary>
    ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken);

    /// <summary>Returns the link with index <paramref name="index"/>, or null.</summary>
    ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken);

    /// <summary>Lists every link in the namespace.</summary>
    ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken);

    /// <summary>Lists addresses, optionally of one link and one family.</summary>
    ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken);

    /// <summary>Dumps routes matching the filter.</summary>
    ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken);

    /// <summary>The route the kernel would use to reach <paramref name="destination"/> (<c>ip route get</c>), or null.</summary>
    ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken);

    /// <summary>Dumps the neighbours of a link (family inet/inet6, not the FDB).</summary>
    ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken);

    /// <summary>Dumps the FDB entries of a link (AF_BRIDGE neighbours).</summary>
    ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken);

    /// <summary>Dumps nexthop objects, optionally of one protocol.</summary>
    ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken);

    /// <summary>
    /// Subscribes to link, address, route and neighbour notifications (multicast groups) until cancelled, so that a
    /// backend notices its device being deleted or its routes being removed.
    /// </summary>
    IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, CancellationToken cancellationToken);
}
