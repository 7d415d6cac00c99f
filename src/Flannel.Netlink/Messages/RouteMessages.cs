using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>
/// Routes: RTM_NEWROUTE (replace), RTM_DELROUTE, RTM_GETROUTE (dump and single lookup), and the decoder of
/// RTM_NEWROUTE. The hot path of flannel's vxlan backend: one route per remote peer.
/// </summary>
/// <remarks>
/// <code>
/// +--------------------------------------------------+
/// | struct nlmsghdr                        16 bytes  |
/// +--------------------------------------------------+
/// | struct rtmsg                           12 bytes  |
/// |  u8 family | u8 dst_len | u8 src_len | u8 tos    |
/// |  u8 table  | u8 protocol| u8 scope   | u8 type   |
/// |  u32 flags (RTNH_F_ONLINK = 4)                   |
/// +--------------------------------------------------+
/// | RTA_DST      destination (omitted for /0)        |
/// | RTA_TABLE    u32, only for tables above 255      |
/// | RTA_NH_ID    u32 nexthop object id               |
/// | RTA_GATEWAY  gateway                             |
/// | RTA_OIF      u32 output ifindex                  |
/// +--------------------------------------------------+
/// </code>
/// <c>ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink</c> writes exactly this order.
/// </remarks>
internal static class RouteMessages
{
    /// <summary>RTM_NEWROUTE with REPLACE|CREATE (<c>ip route replace</c>).</summary>
    public static NetlinkMessageToken WriteReplace(ref NetlinkWriter writer, RouteSpec route, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWROUTE, RequestFlags.Replace, sequence);
        WriteRtMsg(ref writer, route.Destination, route.Table, route.Protocol, (byte)route.Scope, (byte)route.Type, route.OnLink ? RtnetlinkConstants.RTNH_F_ONLINK : 0);
        WriteAttributes(ref writer, route);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>
    /// RTM_DELROUTE as <c>ip route del</c> sends it: protocol unspecified, scope NOWHERE and type UNSPEC act as
    /// wildcards, so the kernel matches on destination, table and (when given) gateway and link.
    /// </summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, RouteSpec route, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_DELROUTE, RequestFlags.Acknowledged, sequence);
        WriteRtMsg(ref writer, route.Destination, route.Table, RtnetlinkConstants.RTPROT_UNSPEC, RtnetlinkConstants.RT_SCOPE_NOWHERE, RtnetlinkConstants.RTN_UNSPEC, 0);
        WriteAttributes(ref writer, route);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>
    /// RTM_GETROUTE dump. With NETLINK_GET_STRICT_CHK the kernel filters by table, protocol and RTA_OIF itself;
    /// callers filter again so a kernel without strict checking gives the same answer.
    /// </summary>
    public static NetlinkMessageToken WriteDump(ref NetlinkWriter writer, byte family, uint? table, byte? protocol, int? linkIndex, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETROUTE, RequestFlags.Dump, sequence);
        byte tableByte = table is uint t && t < 256 ? (byte)t : RtnetlinkConstants.RT_TABLE_UNSPEC;
        writer.WriteRtMsg(family, 0, 0, 0, tableByte, protocol ?? 0, 0, 0, 0);
        if (table is uint big && big >= 256)
        {
            writer.WriteAttributeUInt32(RtnetlinkConstants.RTA_TABLE, big);
        }

        if (linkIndex is int oif)
        {
            writer.WriteAttributeUInt32(RtnetlinkConstants.RTA_OIF, (uint)oif);
        }

        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_GETROUTE for one destination (<c>ip route get A</c>); the reply is one RTM_NEWROUTE.</summary>
    public static NetlinkMessageToken WriteGet(ref NetlinkWriter writer, IPAddress destination, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETROUTE, RequestFlags.Get, sequence);
        byte length = destination.AddressFamily == AddressFamily.InterNetworkV6 ? (byte)128 : (byte)32;
        writer.WriteRtMsg(FamilyCodes.Of(destination), length, 0, 0, 0, 0, 0, 0, 0);
        writer.WriteAttributeAddress(RtnetlinkConstants.RTA_DST, destination);
        writer.EndMessage(message);
        return message;
    }

    private static void WriteRtMsg(ref NetlinkWriter writer, IPNetwork destination, uint table, byte protocol, byte scope, byte type, uint flags)
    {
        byte tableByte = table < 256 ? (byte)table : RtnetlinkConstants.RT_TABLE_UNSPEC;
        writer.WriteRtMsg(FamilyCodes.Of(destination.BaseAddress), (byte)destination.PrefixLength, 0, 0, tableByte, protocol, scope, type, flags);
    }

    private static void WriteAttributes(ref NetlinkWriter writer, RouteSpec route)
    {
        if (route.Destination.PrefixLength > 0)
        {
            writer.WriteAttributeAddress(RtnetlinkConstants.RTA_DST, route.Destination.BaseAddress);
        }

        if (route.Table >= 256)
        {
            writer.WriteAttributeUInt32(RtnetlinkConstants.RTA_TABLE, route.Table);
        }

        if (route.NexthopId is uint nexthop)
        {
            writer.WriteAttributeUInt32(RtnetlinkConstants.RTA_NH_ID, nexthop);
        }

        if (route.Gateway is IPAddress gateway)
        {
            writer.WriteAttributeAddress(RtnetlinkConstants.RTA_GATEWAY, gateway);
        }

        if (route.LinkIndex is int oif)
        {
            writer.WriteAttributeUInt32(RtnetlinkConstants.RTA_OIF, (uint)oif);
        }
    }

    /// <summary>Decodes the payload of an RTM_NEWROUTE / RTM_DELROUTE message.</summary>
    public static RouteInfo Read(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < RtnetlinkConstants.RTMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct rtmsg", payload.Length, RtnetlinkConstants.RTMSG_LEN);
        }

        byte family = payload[0];
        byte destinationLength = payload[1];
        uint table = payload[4];
        byte protocol = payload[5];
        byte scope = payload[6];
        byte type = payload[7];
        uint flags = MemoryMarshal.Read<uint>(payload[8..]);
        IPAddress? destination = null, gateway = null, source = null;
        int? oif = null;
        uint? nexthop = null;
        var attributes = new NetlinkAttributeReader(payload[RtnetlinkConstants.RTMSG_LEN..]);
        while (attributes.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case RtnetlinkConstants.RTA_DST: destination = a.GetAddress(); break;
                case RtnetlinkConstants.RTA_GATEWAY: gateway = a.GetAddress(); break;
                case RtnetlinkConstants.RTA_PREFSRC: source = a.GetAddress(); break;
                case RtnetlinkConstants.RTA_OIF: oif = a.GetInt32(); break;
                case RtnetlinkConstants.RTA_TABLE: table = a.GetUInt32(); break;
                case RtnetlinkConstants.RTA_NH_ID: nexthop = a.GetUInt32(); break;
            }
        }

        if (destination is null && family is not (AddressFamilies.AF_INET or AddressFamilies.AF_INET6))
        {
            ThrowHelper.ThrowMalformed($"route of address family {family} cannot be decoded");
        }

        return new RouteInfo
        {
            Destination = FamilyCodes.Network(destination ?? FamilyCodes.Unspecified(family), destinationLength),
            Gateway = gateway,
            LinkIndex = oif,
            PreferredSource = source,
            OnLink = (flags & RtnetlinkConstants.RTNH_F_ONLINK) != 0,
            Table = table,
            Protocol = protocol,
            Scope = (RouteScope)scope,
            Type = (RouteType)type,
            NexthopId = nexthop,
        };
    }

    /// <summary>Describes a route as <c>ip route</c> would print it, for error messages.</summary>
    public static string Describe(RouteSpec route)
    {
        var text = new StringBuilder();
        text.Append(route.Destination.ToString());
        if (route.NexthopId is uint id)
        {
            text.Append(" nhid ").Append(id);
        }

        if (route.Gateway is not null)
        {
            text.Append(" via ").Append(route.Gateway);
        }

        if (route.LinkIndex is int oif)
        {
            text.Append(" dev ").Append(oif);
        }

        if (route.OnLink)
        {
            text.Append(" onlink");
        }

        if (route.Table != RouteDefaults.MainTable)
        {
            text.Append(" table ").Append(route.Table);
        }

        return text.ToString();
    }
}
