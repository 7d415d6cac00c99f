using System.Globalization;
using System.Net;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.Sockets;

namespace Flannel.Netlink;

// Design note: every change to the kernel is one NetlinkOperation, sent through INetlink.ApplyAsync in a batch (the
// single-object helpers in NetlinkExtensions make a batch of one). The hierarchy is closed (the base constructor is
// private protected), and each operation knows its own message: RtNetlink encodes a batch with one virtual call per
// operation, straight into its reused buffer (0 bytes allocated), and an operation's ToString() is the object in
// `ip` syntax for errors and logs. Callers that interpret operations themselves (FakeNetlink, a metering decorator)
// pattern-match on the sealed types; there is no untyped payload to cast.

/// <summary>
/// One change to the kernel: create, replace or delete a link, address, route, neighbour, FDB entry or nexthop
/// object. Apply it with <see cref="INetlink.ApplyAsync"/> (in a <see cref="NetlinkBatch"/>) or with the
/// single-object helpers in <see cref="NetlinkExtensions"/>.
/// </summary>
public abstract class NetlinkOperation
{
    private protected NetlinkOperation()
    {
    }

    /// <summary>The rtnetlink message the operation sends, e.g. <c>RTM_NEWROUTE</c> (for logs and metrics).</summary>
    public string MessageName => RtnetlinkNames.MessageType(MessageType);

    /// <summary>True for operations that remove an object (a delete of an absent object fails with "not found").</summary>
    public abstract bool IsDelete { get; }

    /// <summary>The message type (<c>RTM_*</c>).</summary>
    internal abstract ushort MessageType { get; }

    /// <summary>The object in <c>ip</c> syntax, e.g. <c>10.244.1.0/24 via 10.244.1.0 dev 4 onlink</c>.</summary>
    /// <returns>The description.</returns>
    public abstract override string ToString();

    /// <summary>
    /// Writes the request into <paramref name="writer"/> with <paramref name="sequence"/>. Resources that must outlive
    /// the encoding until the request is sent (a namespace file descriptor) are added to <paramref name="keepAlive"/>;
    /// the caller disposes them after <c>sendmsg</c>.
    /// </summary>
    internal abstract void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive);
}

/// <summary>Creates or replaces a route (<c>ip route replace</c>).</summary>
/// <param name="route">The route.</param>
public sealed class RouteReplace(RouteSpec route) : NetlinkOperation
{
    /// <summary>The route.</summary>
    public RouteSpec Route { get; } = route ?? throw new ArgumentNullException(nameof(route));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWROUTE;

    /// <inheritdoc />
    public override string ToString() => RouteMessages.Describe(Route);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        RouteMessages.WriteReplace(ref writer, Route, sequence);
}

/// <summary>Deletes a route matching destination, table, and when given, gateway and link (<c>ip route del</c>).</summary>
/// <param name="route">The route.</param>
public sealed class RouteDelete(RouteSpec route) : NetlinkOperation
{
    /// <summary>The route.</summary>
    public RouteSpec Route { get; } = route ?? throw new ArgumentNullException(nameof(route));

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELROUTE;

    /// <inheritdoc />
    public override string ToString() => RouteMessages.Describe(Route);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        RouteMessages.WriteDelete(ref writer, Route, sequence);
}

/// <summary>Creates or replaces a permanent neighbour (<c>ip neigh replace IP lladdr MAC dev LINK nud permanent</c>).</summary>
/// <param name="neighbor">The neighbour.</param>
public sealed class NeighborReplace(NeighborSpec neighbor) : NetlinkOperation
{
    /// <summary>The neighbour.</summary>
    public NeighborSpec Neighbor { get; } = neighbor ?? throw new ArgumentNullException(nameof(neighbor));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWNEIGH;

    /// <inheritdoc />
    public override string ToString() => NeighborMessages.Describe(Neighbor);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NeighborMessages.WriteReplace(ref writer, Neighbor, sequence);
}

/// <summary>Deletes a neighbour (<c>ip neigh del IP dev LINK</c>).</summary>
/// <param name="neighbor">The neighbour.</param>
public sealed class NeighborDelete(NeighborSpec neighbor) : NetlinkOperation
{
    /// <summary>The neighbour.</summary>
    public NeighborSpec Neighbor { get; } = neighbor ?? throw new ArgumentNullException(nameof(neighbor));

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELNEIGH;

    /// <inheritdoc />
    public override string ToString() => NeighborMessages.Describe(Neighbor);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NeighborMessages.WriteDelete(ref writer, Neighbor, sequence);
}

/// <summary>Creates or replaces an FDB entry (<c>bridge fdb replace MAC dev LINK dst IP self permanent</c>).</summary>
/// <param name="entry">The entry.</param>
public sealed class FdbEntryReplace(FdbEntrySpec entry) : NetlinkOperation
{
    /// <summary>The entry.</summary>
    public FdbEntrySpec Entry { get; } = entry ?? throw new ArgumentNullException(nameof(entry));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWNEIGH;

    /// <inheritdoc />
    public override string ToString() => NeighborMessages.Describe(Entry);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NeighborMessages.WriteReplaceFdb(ref writer, Entry, sequence);
}

/// <summary>Deletes an FDB entry (MAC and destination; <c>bridge fdb del</c>).</summary>
/// <param name="entry">The entry.</param>
public sealed class FdbEntryDelete(FdbEntrySpec entry) : NetlinkOperation
{
    /// <summary>The entry.</summary>
    public FdbEntrySpec Entry { get; } = entry ?? throw new ArgumentNullException(nameof(entry));

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELNEIGH;

    /// <inheritdoc />
    public override string ToString() => NeighborMessages.Describe(Entry);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NeighborMessages.WriteDeleteFdb(ref writer, Entry, sequence);
}

/// <summary>Creates or replaces a nexthop object (<c>ip nexthop replace id N via GW dev LINK onlink</c>).</summary>
/// <param name="nexthop">The nexthop object.</param>
public sealed class NexthopReplace(NexthopSpec nexthop) : NetlinkOperation
{
    /// <summary>The nexthop object.</summary>
    public NexthopSpec Nexthop { get; } = nexthop ?? throw new ArgumentNullException(nameof(nexthop));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWNEXTHOP;

    /// <inheritdoc />
    public override string ToString() => NexthopMessages.Describe(Nexthop);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NexthopMessages.WriteReplace(ref writer, Nexthop, sequence);
}

/// <summary>Deletes a nexthop object by id (<c>ip nexthop del id N</c>).</summary>
/// <param name="id">The object id.</param>
public sealed class NexthopDelete(uint id) : NetlinkOperation
{
    /// <summary>The object id.</summary>
    public uint Id { get; } = id;

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELNEXTHOP;

    /// <inheritdoc />
    public override string ToString() => "nexthop id " + Id.ToString(CultureInfo.InvariantCulture);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        NexthopMessages.WriteDelete(ref writer, Id, sequence);
}

/// <summary>
/// Creates a link of a simple kind (bridge, dummy, veth; <c>ip link add</c>). A veth peer can be placed in another
/// network namespace (<see cref="LinkSpec.PeerNamespacePath"/>).
/// </summary>
/// <param name="link">The link.</param>
public sealed class LinkCreate(LinkSpec link) : NetlinkOperation
{
    /// <summary>The link.</summary>
    public LinkSpec Link { get; } = link ?? throw new ArgumentNullException(nameof(link));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWLINK;

    /// <inheritdoc />
    public override string ToString() => $"{Link.Kind.ToString().ToLowerInvariant()} {Link.Name}";

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive)
    {
        int fd = -1;
        if (Link.PeerNamespacePath is { } path)
        {
            // The kernel resolves IFLA_NET_NS_FD while it processes sendmsg: keep the descriptor open until then.
            Microsoft.Win32.SafeHandles.SafeFileHandle handle = NetworkNamespaceThread.OpenNamespace(NetworkNamespaceThread.ResolvePath(path));
            keepAlive.Add(handle);
            fd = (int)handle.DangerousGetHandle();
        }

        LinkMessages.WriteCreate(ref writer, Link, fd, sequence);
    }
}

/// <summary>
/// Creates a vxlan device (<c>ip link add NAME type vxlan id VNI local IP dev LINK dstport PORT nolearning</c>). Whether
/// an existing device may be reused is the caller's policy: this only creates.
/// </summary>
/// <param name="link">The device.</param>
public sealed class VxlanLinkCreate(VxlanLinkSpec link) : NetlinkOperation
{
    /// <summary>The device.</summary>
    public VxlanLinkSpec Link { get; } = link ?? throw new ArgumentNullException(nameof(link));

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWLINK;

    /// <inheritdoc />
    public override string ToString() => $"vxlan {Link.Name} id {Link.Vni}";

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        LinkMessages.WriteCreateVxlan(ref writer, Link, sequence);
}

/// <summary>Deletes a link (<c>ip link del</c>).</summary>
/// <param name="index">The link index.</param>
public sealed class LinkDelete(int index) : NetlinkOperation
{
    /// <summary>The link index.</summary>
    public int Index { get; } = index;

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELLINK;

    /// <inheritdoc />
    public override string ToString() => LinkMessages.Describe(Index);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        LinkMessages.WriteDelete(ref writer, Index, sequence);
}

/// <summary>Sets a link administratively up or down (<c>ip link set LINK up|down</c>).</summary>
/// <param name="index">The link index.</param>
/// <param name="up">True for up.</param>
public sealed class LinkSetUp(int index, bool up) : NetlinkOperation
{
    /// <summary>The link index.</summary>
    public int Index { get; } = index;

    /// <summary>True for up, false for down.</summary>
    public bool Up { get; } = up;

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWLINK;

    /// <inheritdoc />
    public override string ToString() => $"{LinkMessages.Describe(Index)} {(Up ? "up" : "down")}";

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        LinkMessages.WriteSetUp(ref writer, Index, Up, sequence);
}

/// <summary>Sets a link's MTU (<c>ip link set LINK mtu N</c>).</summary>
/// <param name="index">The link index.</param>
/// <param name="mtu">The MTU, positive.</param>
public sealed class LinkSetMtu(int index, int mtu) : NetlinkOperation
{
    /// <summary>The link index.</summary>
    public int Index { get; } = index;

    /// <summary>The MTU.</summary>
    public int Mtu { get; } = mtu > 0 ? mtu : throw new ArgumentOutOfRangeException(nameof(mtu), mtu, "The MTU must be positive.");

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWLINK;

    /// <inheritdoc />
    public override string ToString() => $"{LinkMessages.Describe(Index)} mtu {Mtu.ToString(CultureInfo.InvariantCulture)}";

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        LinkMessages.WriteSetMtu(ref writer, Index, Mtu, sequence);
}

/// <summary>Sets a link's hardware address (<c>ip link set LINK address MAC</c>).</summary>
/// <param name="index">The link index.</param>
/// <param name="address">The MAC address.</param>
public sealed class LinkSetAddress(int index, MacAddress address) : NetlinkOperation
{
    /// <summary>The link index.</summary>
    public int Index { get; } = index;

    /// <summary>The MAC address.</summary>
    public MacAddress Address { get; } = address;

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWLINK;

    /// <inheritdoc />
    public override string ToString() => $"{LinkMessages.Describe(Index)} address {Address}";

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        LinkMessages.WriteSetAddress(ref writer, Index, Address, sequence);
}

/// <summary>Adds an address to a link (<c>ip addr add LOCAL/PREFIX dev LINK</c>).</summary>
/// <param name="linkIndex">The link index.</param>
/// <param name="local">The address.</param>
/// <param name="prefixLength">The prefix length.</param>
public sealed class AddressAdd(int linkIndex, IPAddress local, int prefixLength) : NetlinkOperation
{
    /// <summary>Adds <paramref name="address"/>'s base address with its prefix length.</summary>
    /// <param name="linkIndex">The link index.</param>
    /// <param name="address">The address and prefix.</param>
    public AddressAdd(int linkIndex, IPNetwork address)
        : this(linkIndex, address.BaseAddress, address.PrefixLength)
    {
    }

    /// <summary>The link index.</summary>
    public int LinkIndex { get; } = linkIndex;

    /// <summary>The address.</summary>
    public IPAddress Local { get; } = local ?? throw new ArgumentNullException(nameof(local));

    /// <summary>The prefix length.</summary>
    public int PrefixLength { get; } = prefixLength;

    /// <inheritdoc />
    public override bool IsDelete => false;

    internal override ushort MessageType => RtnetlinkConstants.RTM_NEWADDR;

    /// <inheritdoc />
    public override string ToString() => AddressMessages.Describe(LinkIndex, Local, PrefixLength);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        AddressMessages.WriteAdd(ref writer, LinkIndex, Local, PrefixLength, sequence);
}

/// <summary>Deletes an address from a link (<c>ip addr del LOCAL/PREFIX dev LINK</c>).</summary>
/// <param name="linkIndex">The link index.</param>
/// <param name="local">The address.</param>
/// <param name="prefixLength">The prefix length.</param>
public sealed class AddressDelete(int linkIndex, IPAddress local, int prefixLength) : NetlinkOperation
{
    /// <summary>Deletes <paramref name="address"/>'s base address with its prefix length.</summary>
    /// <param name="linkIndex">The link index.</param>
    /// <param name="address">The address and prefix.</param>
    public AddressDelete(int linkIndex, IPNetwork address)
        : this(linkIndex, address.BaseAddress, address.PrefixLength)
    {
    }

    /// <summary>The link index.</summary>
    public int LinkIndex { get; } = linkIndex;

    /// <summary>The address.</summary>
    public IPAddress Local { get; } = local ?? throw new ArgumentNullException(nameof(local));

    /// <summary>The prefix length.</summary>
    public int PrefixLength { get; } = prefixLength;

    /// <inheritdoc />
    public override bool IsDelete => true;

    internal override ushort MessageType => RtnetlinkConstants.RTM_DELADDR;

    /// <inheritdoc />
    public override string ToString() => AddressMessages.Describe(LinkIndex, Local, PrefixLength);

    internal override void Encode(ref NetlinkWriter writer, uint sequence, List<IDisposable> keepAlive) =>
        AddressMessages.WriteDelete(ref writer, LinkIndex, Local, PrefixLength, sequence);
}
