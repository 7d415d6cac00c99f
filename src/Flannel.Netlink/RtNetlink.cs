using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.Netlink;

/// <summary>
/// <see cref="INetlink"/> over a real rtnetlink socket, bound for life to one network namespace: the caller's
/// (<see cref="Open"/>) or a named one (<see cref="OpenInNamespace"/>). Several instances in one process can
/// program several namespaces at once.
/// </summary>
/// <remarks>
/// Every request is encoded synchronously into a reused buffer by Flannel.NET's own zero-allocation encoder,
/// sent, and matched to its acknowledgement by sequence number; one request or batch is in flight at a time.
/// Every change goes through <see cref="ApplyAsync"/>, which sends many requests per <c>sendmsg</c> and asks only the
/// last of each for an acknowledgement (the kernel answers every failure regardless). Kernel refusals become
/// <see cref="NetlinkException"/> naming the operation, the errno and the object. Never shells out.
/// </remarks>
public sealed partial class RtNetlink : INetlink
{
    private const int Enetunreach = 101;

    private readonly string? _namespacePath;
    private readonly Func<int[], INetlinkSocket> _openMulticast;
    private readonly ILogger _logger;

    internal RtNetlink(INetlinkSocket socket, Func<int[], INetlinkSocket> openMulticast, string? namespacePath, ILogger? logger = null)
    {
        _socket = socket;
        _openMulticast = openMulticast;
        _namespacePath = namespacePath;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The namespace file this instance programs, or null for the caller's own namespace.</summary>
    public string? NamespacePath => _namespacePath;

    /// <summary>Opens rtnetlink in the calling process's network namespace.</summary>
    /// <param name="logger">Receives device recreation and overrun warnings; optional.</param>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    /// <exception cref="NetlinkException">The socket could not be opened.</exception>
    public static RtNetlink Open(ILogger? logger = null)
    {
        RequireLinux();
        return new RtNetlink(LinuxNetlinkSocket.Open(null), groups => LinuxNetlinkSocket.Open(null, groups), null, logger);
    }

    /// <summary>
    /// Opens rtnetlink inside another network namespace: a name created by <c>ip netns add</c> (looked up
    /// under /var/run/netns) or a path such as <c>/proc/1234/ns/net</c>. The namespace is entered on a
    /// dedicated thread only while the socket is created; no runtime thread changes namespace.
    /// </summary>
    /// <param name="nameOrPath">A namespace name (no slash) or a namespace file path.</param>
    /// <param name="logger">Receives device recreation and overrun warnings; optional.</param>
    /// <exception cref="PlatformNotSupportedException">Not on Linux.</exception>
    /// <exception cref="NetlinkException">The namespace could not be entered or the socket opened.</exception>
    public static RtNetlink OpenInNamespace(string nameOrPath, ILogger? logger = null)
    {
        RequireLinux();
        string path = NetworkNamespaceThread.ResolvePath(nameOrPath);
        return new RtNetlink(LinuxNetlinkSocket.Open(path), groups => LinuxNetlinkSocket.Open(path, groups), path, logger);
    }

    // Links

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return GetAsync(RtnetlinkConstants.RTM_GETLINK, name, static (ref NetlinkWriter w, string n, uint seq) => LinkMessages.WriteGet(ref w, n, seq), DecodeLink, IsNotFound, static n => "link " + n, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<LinkInfo?> GetLinkAsync(int index, CancellationToken cancellationToken) =>
        GetAsync(RtnetlinkConstants.RTM_GETLINK, index, static (ref NetlinkWriter w, int i, uint seq) => LinkMessages.WriteGet(ref w, i, seq), DecodeLink, IsNotFound, LinkMessages.Describe, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<LinkInfo>> ListLinksAsync(CancellationToken cancellationToken) =>
        await DumpAsync(RtnetlinkConstants.RTM_GETLINK, 0, static (ref NetlinkWriter w, int _, uint seq) => LinkMessages.WriteDump(ref w, seq), DecodeLink, cancellationToken).ConfigureAwait(false);

    // Addresses

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<AddressInfo>> ListAddressesAsync(int? linkIndex, AddressFamily? family, CancellationToken cancellationToken)
    {
        List<AddressInfo> all = await DumpAsync(RtnetlinkConstants.RTM_GETADDR, (Family: FamilyCodes.Of(family), Link: linkIndex ?? 0), static (ref NetlinkWriter w, (byte Family, int Link) s, uint seq) => AddressMessages.WriteDump(ref w, s.Family, s.Link, seq), static (type, payload) => AddressMessages.Read(payload), cancellationToken).ConfigureAwait(false);
        all.RemoveAll(a => (linkIndex is int l && a.LinkIndex != l) || (family is AddressFamily f && a.Local.AddressFamily != f));
        return all;
    }

    // Routes

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<RouteInfo>> ListRoutesAsync(RouteFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        List<RouteInfo> routes = await DumpAsync(RtnetlinkConstants.RTM_GETROUTE, filter, static (ref NetlinkWriter w, RouteFilter f, uint seq) => RouteMessages.WriteDump(ref w, FamilyCodes.Of(f.Family), f.Table, f.Protocol, f.LinkIndex, seq), static (type, payload) => RouteMessages.Read(payload), cancellationToken).ConfigureAwait(false);
        routes.RemoveAll(r =>
            (filter.Family is AddressFamily family && r.Destination.BaseAddress.AddressFamily != family)
            || (filter.Table is uint table && r.Table != table)
            || (filter.LinkIndex is int link && r.LinkIndex != link)
            || (filter.Protocol is byte protocol && r.Protocol != protocol));
        return routes;
    }

    /// <inheritdoc />
    public ValueTask<RouteInfo?> GetRouteToAsync(IPAddress destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return GetAsync(RtnetlinkConstants.RTM_GETROUTE, destination, static (ref NetlinkWriter w, IPAddress d, uint seq) => RouteMessages.WriteGet(ref w, d, seq), static (type, payload) => type == RtnetlinkConstants.RTM_NEWROUTE ? RouteMessages.Read(payload) : null, static errno => errno == Enetunreach || IsNotFound(errno), static d => "route to " + d, cancellationToken);
    }

    // Neighbours and FDB

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NeighborInfo>> ListNeighborsAsync(int linkIndex, AddressFamily? family, CancellationToken cancellationToken)
    {
        List<NeighborInfo> neighbors = await DumpAsync(RtnetlinkConstants.RTM_GETNEIGH, (Family: FamilyCodes.Of(family), Link: linkIndex), static (ref NetlinkWriter w, (byte Family, int Link) s, uint seq) => NeighborMessages.WriteDump(ref w, s.Family, s.Link, seq), static (type, payload) => NeighborMessages.ReadFamily(payload) is AddressFamilies.AF_INET or AddressFamilies.AF_INET6 ? NeighborMessages.ReadNeighbor(payload) : null, cancellationToken).ConfigureAwait(false);
        neighbors.RemoveAll(n => n.LinkIndex != linkIndex || (family is AddressFamily f && n.Address.AddressFamily != f));
        return neighbors;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<FdbEntryInfo>> ListFdbEntriesAsync(int linkIndex, CancellationToken cancellationToken)
    {
        List<FdbEntryInfo> entries = await DumpAsync(RtnetlinkConstants.RTM_GETNEIGH, linkIndex, static (ref NetlinkWriter w, int link, uint seq) => NeighborMessages.WriteFdbDump(ref w, link, seq), static (type, payload) => NeighborMessages.ReadFamily(payload) == AddressFamilies.AF_BRIDGE ? NeighborMessages.ReadFdbEntry(payload) : null, cancellationToken).ConfigureAwait(false);
        entries.RemoveAll(e => e.LinkIndex != linkIndex);
        return entries;
    }

    // Nexthop objects

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NexthopInfo>> ListNexthopsAsync(byte? protocol, CancellationToken cancellationToken)
    {
        List<NexthopInfo> nexthops = await DumpAsync(RtnetlinkConstants.RTM_GETNEXTHOP, 0, static (ref NetlinkWriter w, int _, uint seq) => NexthopMessages.WriteDump(ref w, seq), static (type, payload) => NexthopMessages.Read(payload), cancellationToken).ConfigureAwait(false);
        if (protocol is byte p)
        {
            nexthops.RemoveAll(n => n.Protocol != p);
        }

        return nexthops;
    }

    // Notifications

    /// <inheritdoc />
    public async IAsyncEnumerable<NetlinkNotification> WatchAsync(NetlinkNotificationGroups groups, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        int[] numbers = MulticastGroups(groups);
        if (numbers.Length == 0)
        {
            throw new ArgumentException("Subscribe to at least one notification group.", nameof(groups));
        }

        using INetlinkSocket socket = _openMulticast(numbers);
        byte[] buffer = new byte[ReceiveBufferLength];
        var notifications = new List<NetlinkNotification>();
        while (true)
        {
            int received;
            try
            {
                received = await socket.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (NetlinkOverrunException)
            {
                received = -1;
            }

            if (received < 0)
            {
                _logger.NotificationsOverrun(_namespacePath ?? "(own)");
                yield return new NetlinkNotification { Kind = NetlinkNotificationKind.Overrun };
                continue;
            }

            notifications.Clear();
            NotificationDecoder.Decode(buffer.AsSpan(0, received), notifications);
            foreach (NetlinkNotification notification in notifications)
            {
                yield return notification;
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            _socket.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    internal static int[] MulticastGroups(NetlinkNotificationGroups groups)
    {
        var numbers = new List<int>(6);
        if (groups.HasFlag(NetlinkNotificationGroups.Link))
        {
            numbers.Add(RtnetlinkConstants.RTNLGRP_LINK);
        }

        if (groups.HasFlag(NetlinkNotificationGroups.Route))
        {
            numbers.Add(RtnetlinkConstants.RTNLGRP_IPV4_ROUTE);
            numbers.Add(RtnetlinkConstants.RTNLGRP_IPV6_ROUTE);
        }

        if (groups.HasFlag(NetlinkNotificationGroups.Address))
        {
            numbers.Add(RtnetlinkConstants.RTNLGRP_IPV4_IFADDR);
            numbers.Add(RtnetlinkConstants.RTNLGRP_IPV6_IFADDR);
        }

        if (groups.HasFlag(NetlinkNotificationGroups.Neighbor))
        {
            numbers.Add(RtnetlinkConstants.RTNLGRP_NEIGH);
        }

        return [.. numbers];
    }

    private static LinkInfo? DecodeLink(ushort type, ReadOnlySpan<byte> payload) =>
        type == RtnetlinkConstants.RTM_NEWLINK ? LinkMessages.Read(payload) : null;

    private static bool IsNotFound(int errno) => errno is Errno.ENOENT or Errno.ENODEV or Errno.ESRCH;

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("rtnetlink exists only on Linux.");
        }
    }
}
