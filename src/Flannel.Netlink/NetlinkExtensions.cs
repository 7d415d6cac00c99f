using System.Net;

namespace Flannel.Netlink;

/// <summary>
/// Single-object changes over <see cref="INetlink.ApplyAsync"/>: each applies a batch of one operation and throws
/// its <see cref="NetlinkException"/> when the kernel refuses it.
/// </summary>
public static class NetlinkExtensions
{
    /// <summary>Applies one operation; throws the kernel's refusal.</summary>
    /// <exception cref="NetlinkException">The kernel refused the operation.</exception>
    public static async ValueTask ApplyAsync(this INetlink netlink, NetlinkOperation operation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(operation);
        NetlinkBatchResult result = await netlink.ApplyAsync(new NetlinkBatch(1).Add(operation), cancellationToken).ConfigureAwait(false);
        if (result[0] is NetlinkException error)
        {
            throw error;
        }
    }

    /// <summary>Creates or replaces a route (<c>ip route replace</c>).</summary>
    public static ValueTask ReplaceRouteAsync(this INetlink netlink, RouteSpec route, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new RouteReplace(route), cancellationToken);

    /// <summary>Deletes a route matching destination, table, and when given, gateway and link.</summary>
    public static ValueTask DeleteRouteAsync(this INetlink netlink, RouteSpec route, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new RouteDelete(route), cancellationToken);

    /// <summary>Creates or replaces a permanent neighbour.</summary>
    public static ValueTask ReplaceNeighborAsync(this INetlink netlink, NeighborSpec neighbor, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new NeighborReplace(neighbor), cancellationToken);

    /// <summary>Deletes a neighbour.</summary>
    public static ValueTask DeleteNeighborAsync(this INetlink netlink, NeighborSpec neighbor, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new NeighborDelete(neighbor), cancellationToken);

    /// <summary>Creates or replaces an FDB entry.</summary>
    public static ValueTask ReplaceFdbEntryAsync(this INetlink netlink, FdbEntrySpec entry, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new FdbEntryReplace(entry), cancellationToken);

    /// <summary>Deletes an FDB entry.</summary>
    public static ValueTask DeleteFdbEntryAsync(this INetlink netlink, FdbEntrySpec entry, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new FdbEntryDelete(entry), cancellationToken);

    /// <summary>Creates or replaces a nexthop object.</summary>
    public static ValueTask ReplaceNexthopAsync(this INetlink netlink, NexthopSpec nexthop, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new NexthopReplace(nexthop), cancellationToken);

    /// <summary>Deletes a nexthop object by id.</summary>
    public static ValueTask DeleteNexthopAsync(this INetlink netlink, uint id, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new NexthopDelete(id), cancellationToken);

    /// <summary>Deletes a link.</summary>
    public static ValueTask DeleteLinkAsync(this INetlink netlink, int index, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new LinkDelete(index), cancellationToken);

    /// <summary>Sets a link administratively up or down.</summary>
    public static ValueTask SetLinkUpAsync(this INetlink netlink, int index, bool up, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new LinkSetUp(index, up), cancellationToken);

    /// <summary>Sets a link's MTU.</summary>
    public static ValueTask SetLinkMtuAsync(this INetlink netlink, int index, int mtu, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new LinkSetMtu(index, mtu), cancellationToken);

    /// <summary>Sets a link's hardware address.</summary>
    public static ValueTask SetLinkAddressAsync(this INetlink netlink, int index, MacAddress address, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new LinkSetAddress(index, address), cancellationToken);

    /// <summary>Adds an address to a link.</summary>
    public static ValueTask AddAddressAsync(this INetlink netlink, int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new AddressAdd(linkIndex, address), cancellationToken);

    /// <summary>Deletes an address from a link.</summary>
    public static ValueTask DeleteAddressAsync(this INetlink netlink, int linkIndex, IPNetwork address, CancellationToken cancellationToken) =>
        netlink.ApplyAsync(new AddressDelete(linkIndex, address), cancellationToken);

    /// <summary>Creates a bridge, dummy or veth link and returns it as the kernel reports it.</summary>
    /// <exception cref="NetlinkException">The kernel refused it, or the link vanished right after.</exception>
    public static async ValueTask<LinkInfo> CreateLinkAsync(this INetlink netlink, LinkSpec link, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(link);
        await netlink.ApplyAsync(new LinkCreate(link), cancellationToken).ConfigureAwait(false);
        return await netlink.GetLinkAsync(link.Name, cancellationToken).ConfigureAwait(false)
            ?? throw new NetlinkException($"link {link.Name} vanished right after it was created");
    }

    /// <summary>
    /// Creates a vxlan device and returns it as the kernel reports it. <see cref="VxlanLinkSpec.Mtu"/> and
    /// <see cref="VxlanLinkSpec.Address"/> are applied after creation when given.
    /// </summary>
    /// <exception cref="NetlinkException">The kernel refused it (e.g. the name exists), or the device vanished.</exception>
    public static async ValueTask<LinkInfo> CreateVxlanLinkAsync(this INetlink netlink, VxlanLinkSpec link, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(link);
        await netlink.ApplyAsync(new VxlanLinkCreate(link), cancellationToken).ConfigureAwait(false);
        LinkInfo created = await netlink.GetLinkAsync(link.Name, cancellationToken).ConfigureAwait(false)
            ?? throw new NetlinkException($"vxlan device {link.Name} vanished right after it was created");
        return await netlink.ConfigureLinkAsync(created, link.Mtu, link.Address, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sets <paramref name="link"/>'s MTU and hardware address where they differ from <paramref name="mtu"/> and
    /// <paramref name="address"/> (null leaves a property as it is), and returns the link as the kernel reports it.
    /// </summary>
    /// <exception cref="NetlinkException">The kernel refused a change, or the link vanished.</exception>
    public static async ValueTask<LinkInfo> ConfigureLinkAsync(this INetlink netlink, LinkInfo link, int? mtu, MacAddress? address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(link);
        var batch = new NetlinkBatch(2);
        if (mtu is int wantedMtu && link.Mtu != wantedMtu)
        {
            batch.Add(new LinkSetMtu(link.Index, wantedMtu));
        }

        if (address is MacAddress mac && link.Address != mac)
        {
            batch.Add(new LinkSetAddress(link.Index, mac));
        }

        if (batch.Count == 0)
        {
            return link;
        }

        NetlinkBatchResult result = await netlink.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
        foreach (NetlinkException? error in result.Errors)
        {
            if (error is not null)
            {
                throw error;
            }
        }

        return await netlink.GetLinkAsync(link.Index, cancellationToken).ConfigureAwait(false)
            ?? throw new NetlinkException($"link {link.Name} vanished while it was being configured");
    }

    /// <summary>
    /// Ensures <paramref name="address"/> is on the link. Other addresses of the same family on the link that lie
    /// inside <paramref name="replaceWithin"/> are removed first (flannel's <c>EnsureV4AddressOnLink</c>); they are
    /// returned so the caller can log them.
    /// </summary>
    /// <exception cref="NetlinkException">The kernel refused a change.</exception>
    public static async ValueTask<IReadOnlyList<AddressInfo>> EnsureAddressAsync(this INetlink netlink, int linkIndex, IPNetwork address, IPNetwork? replaceWithin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        bool present = false;
        var removed = new List<AddressInfo>();
        foreach (AddressInfo existing in await netlink.ListAddressesAsync(linkIndex, address.BaseAddress.AddressFamily, cancellationToken).ConfigureAwait(false))
        {
            if (existing.Local.Equals(address.BaseAddress) && existing.Address.PrefixLength == address.PrefixLength)
            {
                present = true;
            }
            else if (replaceWithin is IPNetwork within && within.Contains(existing.Local))
            {
                await netlink.ApplyAsync(new AddressDelete(existing.LinkIndex, existing.Local, existing.Address.PrefixLength), cancellationToken).ConfigureAwait(false);
                removed.Add(existing);
            }
        }

        if (!present)
        {
            await netlink.ApplyAsync(new AddressAdd(linkIndex, address), cancellationToken).ConfigureAwait(false);
        }

        return removed;
    }
}
