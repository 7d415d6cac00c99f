namespace Flannel.Netlink;

/// <summary>Multicast groups to subscribe to.</summary>
[Flags]
public enum NetlinkNotificationGroups
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>RTNLGRP_LINK: links created, changed, deleted.</summary>
    Link = 1,

    /// <summary>RTNLGRP_IPV4_ROUTE and RTNLGRP_IPV6_ROUTE.</summary>
    Route = 2,

    /// <summary>RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR.</summary>
    Address = 4,

    /// <summary>RTNLGRP_NEIGH.</summary>
    Neighbor = 8,
}

/// <summary>What a notification reports.</summary>
public enum NetlinkNotificationKind
{
    /// <summary>RTM_NEWLINK.</summary>
    LinkAddedOrChanged,

    /// <summary>RTM_DELLINK.</summary>
    LinkDeleted,

    /// <summary>RTM_NEWROUTE.</summary>
    RouteAdded,

    /// <summary>RTM_DELROUTE.</summary>
    RouteDeleted,

    /// <summary>RTM_NEWADDR.</summary>
    AddressAdded,

    /// <summary>RTM_DELADDR.</summary>
    AddressDeleted,

    /// <summary>RTM_NEWNEIGH.</summary>
    NeighborAdded,

    /// <summary>RTM_DELNEIGH.</summary>
    NeighborDeleted,

    /// <summary>The kernel dropped notifications (ENOBUFS): the subscriber must resynchronise by dumping.</summary>
    Overrun,
}

/// <summary>One kernel notification. Exactly one of the payload members is set, matching <see cref="Kind"/>.</summary>
public sealed record NetlinkNotification
{
    /// <summary>What happened.</summary>
    public required NetlinkNotificationKind Kind { get; init; }

    /// <summary>The link, for link notifications.</summary>
    public LinkInfo? Link { get; init; }

    /// <summary>The route, for route notifications.</summary>
    public RouteInfo? Route { get; init; }

    /// <summary>The address, for address notifications.</summary>
    public AddressInfo? Address { get; init; }

    /// <summary>The neighbour, for neighbour notifications.</summary>
    public NeighborInfo? Neighbor { get; init; }
}
