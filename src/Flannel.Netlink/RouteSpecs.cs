using System.Net;
using System.Net.Sockets;

namespace Flannel.Netlink;

/// <summary>Route scope (rtm_scope).</summary>
public enum RouteScope : byte
{
    /// <summary>RT_SCOPE_UNIVERSE: a route via a gateway.</summary>
    Universe = 0,

    /// <summary>RT_SCOPE_LINK: directly attached.</summary>
    Link = 253,

    /// <summary>RT_SCOPE_HOST: local address.</summary>
    Host = 254,
}

/// <summary>Route type (rtm_type, <c>RTN_*</c>).</summary>
public enum RouteType : byte
{
    /// <summary>RTN_UNSPEC.</summary>
    Unspecified = 0,

    /// <summary>RTN_UNICAST: a gateway or direct route (the default).</summary>
    Unicast = 1,

    /// <summary>RTN_LOCAL: an address of this host.</summary>
    Local = 2,

    /// <summary>RTN_BROADCAST.</summary>
    Broadcast = 3,

    /// <summary>RTN_ANYCAST.</summary>
    Anycast = 4,

    /// <summary>RTN_MULTICAST.</summary>
    Multicast = 5,

    /// <summary>RTN_BLACKHOLE: silently drops the packet (<c>ip route add blackhole</c>).</summary>
    Blackhole = 6,

    /// <summary>RTN_UNREACHABLE: drops with an ICMP unreachable.</summary>
    Unreachable = 7,

    /// <summary>RTN_PROHIBIT: drops with an ICMP prohibited.</summary>
    Prohibit = 8,

    /// <summary>RTN_THROW: continues the lookup in the next table.</summary>
    Throw = 9,
}

/// <summary>Neighbour cache states (ndm_state, <c>NUD_*</c> bits).</summary>
[Flags]
public enum NeighborState : ushort
{
    /// <summary>No state bit.</summary>
    None = 0,

    /// <summary>NUD_INCOMPLETE: resolution in progress.</summary>
    Incomplete = 0x01,

    /// <summary>NUD_REACHABLE.</summary>
    Reachable = 0x02,

    /// <summary>NUD_STALE.</summary>
    Stale = 0x04,

    /// <summary>NUD_DELAY.</summary>
    Delay = 0x08,

    /// <summary>NUD_PROBE.</summary>
    Probe = 0x10,

    /// <summary>NUD_FAILED.</summary>
    Failed = 0x20,

    /// <summary>NUD_NOARP: no resolution needed.</summary>
    NoArp = 0x40,

    /// <summary>NUD_PERMANENT: static, never expires (flannel's neighbours and FDB entries).</summary>
    Permanent = 0x80,
}

/// <summary>Neighbour flags (ndm_flags, <c>NTF_*</c> bits).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Named after the kernel's flag words (ifa_flags, ndm_flags), as BindingFlags is.")]
public enum NeighborFlags : byte
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>NTF_USE.</summary>
    Use = 0x01,

    /// <summary>NTF_SELF: the entry belongs to the device itself (a vxlan device's own FDB), not a bridge master.</summary>
    Self = 0x02,

    /// <summary>NTF_MASTER: the entry belongs to the bridge the device is enslaved to.</summary>
    Master = 0x04,

    /// <summary>NTF_PROXY.</summary>
    Proxy = 0x08,

    /// <summary>NTF_EXT_LEARNED: learned by an external agent.</summary>
    ExternallyLearned = 0x10,

    /// <summary>NTF_OFFLOADED.</summary>
    Offloaded = 0x20,

    /// <summary>NTF_STICKY.</summary>
    Sticky = 0x40,

    /// <summary>NTF_ROUTER: an IPv6 router.</summary>
    Router = 0x80,
}

/// <summary>Well-known route tables and protocols.</summary>
public static class RouteDefaults
{
    /// <summary>The main routing table (RT_TABLE_MAIN).</summary>
    public const uint MainTable = 254;

    /// <summary>RTPROT_BOOT, what <c>ip route add</c> uses and what flannel's routes carry.</summary>
    public const byte ProtocolBoot = 3;

    /// <summary>RTPROT_KERNEL: routes the kernel adds for addresses.</summary>
    public const byte ProtocolKernel = 2;

    /// <summary>
    /// The route protocol Flannel.NET tags its own routes with, so reconciliation can delete stale routes
    /// it owns without ever touching anyone else's. Unassigned in /etc/iproute2/rt_protos.
    /// </summary>
    public const byte ProtocolFlannel = 0x46; // 70, 'F'
}

/// <summary>A route to create, replace or delete.</summary>
public sealed record RouteSpec
{
    /// <summary>Destination network.</summary>
    public required IPNetwork Destination { get; init; }

    /// <summary>Gateway (RTA_GATEWAY), when the route goes via one.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>Output link (RTA_OIF).</summary>
    public int? LinkIndex { get; init; }

    /// <summary>RTNH_F_ONLINK: the gateway is reachable on the link without a covering route.</summary>
    public bool OnLink { get; init; }

    /// <summary>Routing table.</summary>
    public uint Table { get; init; } = RouteDefaults.MainTable;

    /// <summary>Route protocol (rtm_protocol).</summary>
    public byte Protocol { get; init; } = RouteDefaults.ProtocolBoot;

    /// <summary>Scope.</summary>
    public RouteScope Scope { get; init; } = RouteScope.Universe;

    /// <summary>A nexthop object id (RTA_NH_ID) instead of gateway and link.</summary>
    public uint? NexthopId { get; init; }

    /// <summary>Route type.</summary>
    public RouteType Type { get; init; } = RouteType.Unicast;
}

/// <summary>A route as the kernel reports it.</summary>
public sealed record RouteInfo
{
    /// <summary>Destination network (0.0.0.0/0 or ::/0 for a default route).</summary>
    public required IPNetwork Destination { get; init; }

    /// <summary>Gateway, if any.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>Output link, if any.</summary>
    public int? LinkIndex { get; init; }

    /// <summary>Preferred source (RTA_PREFSRC), if any.</summary>
    public IPAddress? PreferredSource { get; init; }

    /// <summary>RTNH_F_ONLINK is set.</summary>
    public bool OnLink { get; init; }

    /// <summary>Routing table.</summary>
    public uint Table { get; init; }

    /// <summary>Route protocol.</summary>
    public byte Protocol { get; init; }

    /// <summary>Scope.</summary>
    public RouteScope Scope { get; init; }

    /// <summary>Route type.</summary>
    public RouteType Type { get; init; }

    /// <summary>Nexthop object id, if the route uses one.</summary>
    public uint? NexthopId { get; init; }
}

/// <summary>Which routes to dump. Null members match anything.</summary>
public sealed record RouteFilter
{
    /// <summary>Address family.</summary>
    public AddressFamily? Family { get; init; }

    /// <summary>Routing table; null for all tables.</summary>
    public uint? Table { get; init; } = RouteDefaults.MainTable;

    /// <summary>Output link.</summary>
    public int? LinkIndex { get; init; }

    /// <summary>Route protocol.</summary>
    public byte? Protocol { get; init; }
}

/// <summary>A permanent neighbour (ARP/NDP entry) to replace or delete.</summary>
public sealed record NeighborSpec
{
    /// <summary>The link.</summary>
    public required int LinkIndex { get; init; }

    /// <summary>The neighbour's IP address (NDA_DST).</summary>
    public required IPAddress Address { get; init; }

    /// <summary>Its link-layer address (NDA_LLADDR); not needed for a delete.</summary>
    public MacAddress LinkLayerAddress { get; init; }
}

/// <summary>A neighbour as the kernel reports it.</summary>
public sealed record NeighborInfo
{
    /// <summary>The link.</summary>
    public required int LinkIndex { get; init; }

    /// <summary>The neighbour's IP address.</summary>
    public required IPAddress Address { get; init; }

    /// <summary>Its link-layer address, if known.</summary>
    public MacAddress? LinkLayerAddress { get; init; }

    /// <summary>The cache state.</summary>
    public NeighborState State { get; init; }

    /// <summary>The flags.</summary>
    public NeighborFlags Flags { get; init; }

    /// <summary>True when the entry is permanent.</summary>
    public bool IsPermanent => (State & NeighborState.Permanent) != 0;
}

/// <summary>
/// A vxlan FDB entry (AF_BRIDGE neighbour with NTF_SELF, NUD_PERMANENT): frames for
/// <see cref="MacAddress"/> are sent to <see cref="Destination"/>.
/// </summary>
public sealed record FdbEntrySpec
{
    /// <summary>The vxlan link.</summary>
    public required int LinkIndex { get; init; }

    /// <summary>The remote VTEP MAC (NDA_LLADDR).</summary>
    public required MacAddress MacAddress { get; init; }

    /// <summary>The remote VTEP's underlay address (NDA_DST).</summary>
    public required IPAddress Destination { get; init; }
}

/// <summary>An FDB entry as the kernel reports it.</summary>
public sealed record FdbEntryInfo
{
    /// <summary>The link.</summary>
    public required int LinkIndex { get; init; }

    /// <summary>The MAC address.</summary>
    public required MacAddress MacAddress { get; init; }

    /// <summary>The remote destination, when the entry has one.</summary>
    public IPAddress? Destination { get; init; }

    /// <summary>The cache state.</summary>
    public NeighborState State { get; init; }

    /// <summary>The flags (a vxlan device's own entries carry <see cref="NeighborFlags.Self"/>).</summary>
    public NeighborFlags Flags { get; init; }

    /// <summary>True when the entry is permanent.</summary>
    public bool IsPermanent => (State & NeighborState.Permanent) != 0;
}

/// <summary>A nexthop object (<c>ip nexthop</c>).</summary>
public sealed record NexthopSpec
{
    /// <summary>Object id (NHA_ID), non-zero.</summary>
    public required uint Id { get; init; }

    /// <summary>Gateway (NHA_GATEWAY).</summary>
    public required IPAddress Gateway { get; init; }

    /// <summary>Output link (NHA_OIF).</summary>
    public required int LinkIndex { get; init; }

    /// <summary>RTNH_F_ONLINK.</summary>
    public bool OnLink { get; init; }

    /// <summary>Protocol (nh_protocol).</summary>
    public byte Protocol { get; init; } = RouteDefaults.ProtocolFlannel;
}

/// <summary>A nexthop object as the kernel reports it.</summary>
public sealed record NexthopInfo
{
    /// <summary>Object id.</summary>
    public required uint Id { get; init; }

    /// <summary>Gateway, if any.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>Output link, if any.</summary>
    public int? LinkIndex { get; init; }

    /// <summary>RTNH_F_ONLINK is set.</summary>
    public bool OnLink { get; init; }

    /// <summary>Protocol.</summary>
    public byte Protocol { get; init; }
}
