using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Links;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>
/// Links: RTM_NEWLINK (create, set up/MTU/MAC), RTM_DELLINK, RTM_GETLINK (one or a dump), and the decoder of
/// RTM_NEWLINK replies and notifications.
/// </summary>
/// <remarks>
/// <code>
/// +--------------------------------------+
/// | struct nlmsghdr            16 bytes  |
/// +--------------------------------------+
/// | struct ifinfomsg           16 bytes  |
/// |  u8 family | u8 pad | u16 type       |
/// |  s32 index                           |
/// |  u32 flags (IFF_*)                   |
/// |  u32 change (mask of flags to set)   |
/// +--------------------------------------+
/// | IFLA_IFNAME "flannel.1\0"            |
/// | IFLA_MTU / IFLA_ADDRESS / IFLA_MASTER|
/// | IFLA_LINKINFO                        |
/// |   IFLA_INFO_KIND "vxlan"             |
/// |   IFLA_INFO_DATA { kind specific }   |
/// +--------------------------------------+
/// </code>
/// </remarks>
internal static class LinkMessages
{
    /// <summary>RTM_NEWLINK creating a vxlan device (CREATE|EXCL), as <c>ip link add … type vxlan …</c>.</summary>
    public static NetlinkMessageToken WriteCreateVxlan(ref NetlinkWriter writer, VxlanLinkSpec spec, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, RequestFlags.CreateExclusive, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0, 0);
        writer.WriteAttributeString(LinkConstants.IFLA_IFNAME, spec.Name);
        NetlinkNestToken info = writer.BeginNested(LinkConstants.IFLA_LINKINFO);
        VxlanLinkData.Write(ref writer, spec);
        writer.EndNested(info);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_NEWLINK creating a bridge, dummy or veth (CREATE|EXCL).</summary>
    /// <param name="writer">The writer.</param>
    /// <param name="spec">The link.</param>
    /// <param name="peerNamespaceFd">For veth: an open namespace fd for the peer, or -1.</param>
    /// <param name="sequence">nlmsg_seq.</param>
    public static NetlinkMessageToken WriteCreate(ref NetlinkWriter writer, LinkSpec spec, int peerNamespaceFd, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, RequestFlags.CreateExclusive, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0, 0);
        writer.WriteAttributeString(LinkConstants.IFLA_IFNAME, spec.Name);
        if (spec.Mtu is int mtu)
        {
            writer.WriteAttributeUInt32(LinkConstants.IFLA_MTU, (uint)mtu);
        }

        if (spec.Address is MacAddress mac)
        {
            writer.WriteAttributeMac(LinkConstants.IFLA_ADDRESS, mac);
        }

        if (spec.MasterIndex is int master)
        {
            writer.WriteAttributeUInt32(LinkConstants.IFLA_MASTER, (uint)master);
        }

        NetlinkNestToken info = writer.BeginNested(LinkConstants.IFLA_LINKINFO);
        switch (spec.Kind)
        {
            case LinkKind.Bridge:
                BridgeLinkData.Write(ref writer);
                break;
            case LinkKind.Dummy:
                DummyLinkData.Write(ref writer);
                break;
            case LinkKind.WireGuard:
                WireGuardLinkData.Write(ref writer);
                break;
            case LinkKind.Veth:
                VethLinkData.Write(ref writer, spec.PeerName ?? throw new ArgumentException("A veth link needs PeerName.", nameof(spec)), peerNamespaceFd);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "Unknown link kind.");
        }

        writer.EndNested(info);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_GETLINK for one link by name, as <c>ip</c> asks (IFLA_EXT_MASK then IFLA_IFNAME).</summary>
    public static NetlinkMessageToken WriteGet(ref NetlinkWriter writer, string name, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETLINK, RequestFlags.Get, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0, 0);
        writer.WriteAttributeUInt32(LinkConstants.IFLA_EXT_MASK, LinkConstants.RTEXT_FILTER_VF | LinkConstants.RTEXT_FILTER_SKIP_STATS);
        writer.WriteAttributeString(LinkConstants.IFLA_IFNAME, name);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_GETLINK for one link by index.</summary>
    public static NetlinkMessageToken WriteGet(ref NetlinkWriter writer, int index, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETLINK, RequestFlags.Get, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, index, 0, 0);
        writer.WriteAttributeUInt32(LinkConstants.IFLA_EXT_MASK, LinkConstants.RTEXT_FILTER_VF | LinkConstants.RTEXT_FILTER_SKIP_STATS);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_GETLINK dump of every link.</summary>
    public static NetlinkMessageToken WriteDump(ref NetlinkWriter writer, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETLINK, RequestFlags.Dump, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0, 0);
        writer.WriteAttributeUInt32(LinkConstants.IFLA_EXT_MASK, LinkConstants.RTEXT_FILTER_VF | LinkConstants.RTEXT_FILTER_SKIP_STATS);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_DELLINK by index (<c>ip link del dev X</c> resolves the name and sends only the index).</summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, int index, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_DELLINK, RequestFlags.Acknowledged, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, index, 0, 0);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_NEWLINK setting IFF_UP on or off (ifi_change = IFF_UP).</summary>
    public static NetlinkMessageToken WriteSetUp(ref NetlinkWriter writer, int index, bool up, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, RequestFlags.Acknowledged, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, index, up ? LinkConstants.IFF_UP : 0, LinkConstants.IFF_UP);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_NEWLINK setting IFLA_MTU.</summary>
    public static NetlinkMessageToken WriteSetMtu(ref NetlinkWriter writer, int index, int mtu, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, RequestFlags.Acknowledged, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, index, 0, 0);
        writer.WriteAttributeUInt32(LinkConstants.IFLA_MTU, (uint)mtu);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_NEWLINK setting IFLA_ADDRESS.</summary>
    public static NetlinkMessageToken WriteSetAddress(ref NetlinkWriter writer, int index, MacAddress address, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWLINK, RequestFlags.Acknowledged, sequence);
        writer.WriteIfInfoMsg(AddressFamilies.AF_UNSPEC, 0, index, 0, 0);
        writer.WriteAttributeMac(LinkConstants.IFLA_ADDRESS, address);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>Decodes the payload of an RTM_NEWLINK / RTM_DELLINK message.</summary>
    public static LinkInfo Read(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < LinkConstants.IFINFOMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct ifinfomsg", payload.Length, LinkConstants.IFINFOMSG_LEN);
        }

        int index = MemoryMarshal.Read<int>(payload[4..]);
        uint flags = MemoryMarshal.Read<uint>(payload[8..]);
        string? name = null;
        string? kind = null;
        MacAddress? address = null;
        int mtu = 0;
        int? master = null;
        VxlanInfo? vxlan = null;
        var attributes = new NetlinkAttributeReader(payload[LinkConstants.IFINFOMSG_LEN..]);
        while (attributes.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case LinkConstants.IFLA_IFNAME: name = a.GetString(); break;
                case LinkConstants.IFLA_MTU: mtu = a.GetInt32(); break;
                case LinkConstants.IFLA_ADDRESS: address = a.GetMacOrNull(); break;
                case LinkConstants.IFLA_MASTER:
                    int m = a.GetInt32();
                    master = m == 0 ? null : m;
                    break;
                case LinkConstants.IFLA_LINKINFO:
                    (kind, vxlan) = ReadLinkInfo(a.Nested);
                    break;
            }
        }

        return new LinkInfo
        {
            Index = index,
            Name = name ?? ThrowHelper.ThrowMalformed<string>("RTM_NEWLINK without IFLA_IFNAME"),
            Kind = kind,
            Address = address,
            Mtu = mtu,
            IsUp = (flags & LinkConstants.IFF_UP) != 0,
            MasterIndex = master,
            Vxlan = vxlan,
        };
    }

    private static (string? Kind, VxlanInfo? Vxlan) ReadLinkInfo(NetlinkAttributeReader info)
    {
        string? kind = null;
        VxlanInfo? vxlan = null;
        while (info.TryRead(out NetlinkAttribute a))
        {
            if (a.Type == LinkConstants.IFLA_INFO_KIND)
            {
                kind = a.GetString();
            }
            else if (a.Type == LinkConstants.IFLA_INFO_DATA && kind == VxlanLinkData.Kind)
            {
                vxlan = VxlanLinkData.Read(a.Nested);
            }
        }

        return (kind, vxlan);
    }

    /// <summary>Describes a link for error messages.</summary>
    public static string Describe(int index) => "link index " + index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
