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

    /// <summary>Route type; 1 = RTN_UNICAST, 6 = RTN_BLACKHOLE.</summary>
    public byte Type { get; init; } = 1;
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

    /// <summary>Route type (1 unicast, 2 local, 6 blackhole...).</summary>
    public byte Type { get; init; }

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

    /// <summary>NUD_* state bits (0x80 = PERMANENT).</summary>
    public ushort State { get; init; }

    /// <summary>NTF_* flags.</summary>
    public byte Flags { get; init; }

    /// <summary>True when the NUD_PERMANENT bit is set.</summary>
    public bool IsPermanent => (State & 0x80) != 0;
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

    /// <summary>NUD_* state bits.</summary>
    public ushort State { get; init; }

    /// <summary>NTF_* flags (0x02 = NTF_SELF).</summary>
    public byte Flags { get; init; }

    /// <summary>True when the NUD_PERMANENT bit is set.</summary>
    public bool IsPermanent => (State & 0x80) != 0;
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
