using System.Net.Sockets;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Links;

/// <summary>
/// The vxlan kind: <c>IFLA_INFO_KIND "vxlan"</c> and its <c>IFLA_INFO_DATA</c>, with flannel's full attribute
/// set (flannel-compat section 4.1) in the order iproute2 writes them, so the bytes equal
/// <c>ip link add flannel.1 type vxlan id 1 local IP dev DEV ttl 0 tos 0 nolearning noproxy norsc nol2miss
/// nol3miss noudp6zerocsumtx noudp6zerocsumrx [gbp] [dstport N]</c>.
/// </summary>
/// <remarks>
/// <code>
/// IFLA_INFO_DATA
///   IFLA_VXLAN_LINK               u32   underlay ifindex (only when given)
///   IFLA_VXLAN_TTL                u8    0 (inherit)
///   IFLA_VXLAN_TOS                u8    0
///   IFLA_VXLAN_PROXY              u8    0
///   IFLA_VXLAN_RSC                u8    0
///   IFLA_VXLAN_L2MISS             u8    0
///   IFLA_VXLAN_L3MISS             u8    0
///   IFLA_VXLAN_UDP_ZERO_CSUM6_TX  u8    0
///   IFLA_VXLAN_UDP_ZERO_CSUM6_RX  u8    0
///   IFLA_VXLAN_GBP                flag  (only when GBP)
///   IFLA_VXLAN_ID                 u32   VNI
///   IFLA_VXLAN_LOCAL / LOCAL6     4/16  local VTEP address (only when given)
///   IFLA_VXLAN_LEARNING           u8    learning
///   IFLA_VXLAN_PORT               be16  only when > 0, otherwise the kernel default 8472 stays
/// </code>
/// </remarks>
internal static class VxlanLinkData
{
    public const string Kind = "vxlan";

    public static void Write(ref NetlinkWriter writer, VxlanLinkSpec spec)
    {
        writer.WriteAttributeString(LinkConstants.IFLA_INFO_KIND, Kind, nulTerminated: false);
        NetlinkNestToken data = writer.BeginNested(LinkConstants.IFLA_INFO_DATA);
        if (spec.UnderlayIndex is int underlay)
        {
            writer.WriteAttributeUInt32(LinkConstants.IFLA_VXLAN_LINK, (uint)underlay);
        }

        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_TTL, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_TOS, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_PROXY, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_RSC, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_L2MISS, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_L3MISS, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_UDP_ZERO_CSUM6_TX, 0);
        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_UDP_ZERO_CSUM6_RX, 0);
        if (spec.Gbp)
        {
            writer.WriteAttributeFlag(LinkConstants.IFLA_VXLAN_GBP);
        }

        writer.WriteAttributeUInt32(LinkConstants.IFLA_VXLAN_ID, spec.Vni);
        if (spec.Local is { } local)
        {
            writer.WriteAttributeAddress(
                local.AddressFamily == AddressFamily.InterNetworkV6 ? LinkConstants.IFLA_VXLAN_LOCAL6 : LinkConstants.IFLA_VXLAN_LOCAL,
                local);
        }

        writer.WriteAttributeUInt8(LinkConstants.IFLA_VXLAN_LEARNING, spec.Learning ? (byte)1 : (byte)0);
        if (spec.Port > 0)
        {
            // The kernel keeps the port in network byte order (vxlan's dst_port is __be16).
            writer.WriteAttributeUInt16BigEndian(LinkConstants.IFLA_VXLAN_PORT, spec.Port);
        }

        writer.EndNested(data);
    }

    /// <summary>Decodes IFLA_INFO_DATA of a vxlan link.</summary>
    public static VxlanInfo Read(NetlinkAttributeReader data)
    {
        uint vni = 0;
        System.Net.IPAddress? local = null;
        System.Net.IPAddress? group = null;
        int? underlay = null;
        ushort port = 0;
        bool learning = false, gbp = false, l2miss = false, l3miss = false;
        while (data.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case LinkConstants.IFLA_VXLAN_ID: vni = a.GetUInt32(); break;
                case LinkConstants.IFLA_VXLAN_LOCAL:
                case LinkConstants.IFLA_VXLAN_LOCAL6: local = a.GetAddress(); break;
                case LinkConstants.IFLA_VXLAN_GROUP:
                case LinkConstants.IFLA_VXLAN_GROUP6: group = a.GetAddress(); break;
                case LinkConstants.IFLA_VXLAN_LINK:
                    uint link = a.GetUInt32();
                    underlay = link == 0 ? null : (int)link;
                    break;
                case LinkConstants.IFLA_VXLAN_PORT: port = a.GetUInt16BigEndian(); break;
                case LinkConstants.IFLA_VXLAN_LEARNING: learning = a.GetUInt8() != 0; break;
                case LinkConstants.IFLA_VXLAN_GBP: gbp = true; break;
                case LinkConstants.IFLA_VXLAN_L2MISS: l2miss = a.GetUInt8() != 0; break;
                case LinkConstants.IFLA_VXLAN_L3MISS: l3miss = a.GetUInt8() != 0; break;
            }
        }

        // The kernel reports an unset local or group as the zero address.
        if (local is not null && (local.Equals(System.Net.IPAddress.Any) || local.Equals(System.Net.IPAddress.IPv6Any)))
        {
            local = null;
        }

        if (group is not null && (group.Equals(System.Net.IPAddress.Any) || group.Equals(System.Net.IPAddress.IPv6Any)))
        {
            group = null;
        }

        return new VxlanInfo
        {
            Vni = vni,
            Local = local,
            Group = group,
            UnderlayIndex = underlay,
            Port = port,
            Learning = learning,
            Gbp = gbp,
            L2Miss = l2miss,
            L3Miss = l3miss,
        };
    }
}
