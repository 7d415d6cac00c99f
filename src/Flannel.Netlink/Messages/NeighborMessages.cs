using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>
/// Neighbours and vxlan FDB entries: RTM_NEWNEIGH (replace), RTM_DELNEIGH, RTM_GETNEIGH dump, and the
/// decoders. An FDB entry is the AF_BRIDGE form with NTF_SELF (the vxlan device's own table) and NDA_DST.
/// </summary>
/// <remarks>
/// <code>
/// +----------------------------------------------+
/// | struct nlmsghdr                    16 bytes  |
/// +----------------------------------------------+
/// | struct ndmsg                       12 bytes  |
/// |  u8 family | u8 pad1 | u16 pad2              |
/// |  s32 ifindex                                 |
/// |  u16 state (NUD_*) | u8 flags (NTF_*) | u8 type
/// +----------------------------------------------+
/// neighbour (AF_INET/AF_INET6, NUD_PERMANENT):
/// | NDA_DST     IP address                       |
/// | NDA_LLADDR  6-byte MAC (not on delete)       |
/// FDB entry (AF_BRIDGE, NUD_NOARP|NUD_PERMANENT, NTF_SELF):
/// | NDA_LLADDR  remote VTEP MAC                  |
/// | NDA_DST     remote VTEP underlay address     |
/// +----------------------------------------------+
/// </code>
/// iproute2's <c>bridge fdb … permanent</c> sends state NUD_NOARP|NUD_PERMANENT (0xc0), and so do we; the
/// kernel reports the entry as <c>permanent</c> either way.
/// </remarks>
internal static class NeighborMessages
{
    private const ushort FdbState = NeighborConstants.NUD_NOARP | NeighborConstants.NUD_PERMANENT;

    /// <summary>RTM_NEWNEIGH REPLACE|CREATE, as <c>ip neigh replace IP lladdr MAC dev X nud permanent</c>.</summary>
    public static NetlinkMessageToken WriteReplace(ref NetlinkWriter writer, NeighborSpec neighbor, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWNEIGH, RequestFlags.Replace, sequence);
        writer.WriteNdMsg(FamilyCodes.Of(neighbor.Address), neighbor.LinkIndex, NeighborConstants.NUD_PERMANENT, 0, 0);
        writer.WriteAttributeAddress(NeighborConstants.NDA_DST, neighbor.Address);
        writer.WriteAttributeMac(NeighborConstants.NDA_LLADDR, neighbor.LinkLayerAddress);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_DELNEIGH, as <c>ip neigh del IP dev X</c>.</summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, NeighborSpec neighbor, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_DELNEIGH, RequestFlags.Acknowledged, sequence);
        writer.WriteNdMsg(FamilyCodes.Of(neighbor.Address), neighbor.LinkIndex, NeighborConstants.NUD_PERMANENT, 0, 0);
        writer.WriteAttributeAddress(NeighborConstants.NDA_DST, neighbor.Address);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_NEWNEIGH AF_BRIDGE, as <c>bridge fdb replace MAC dev X dst IP self permanent</c>.</summary>
    public static NetlinkMessageToken WriteReplaceFdb(ref NetlinkWriter writer, FdbEntrySpec entry, uint sequence) =>
        WriteFdb(ref writer, RtnetlinkConstants.RTM_NEWNEIGH, RequestFlags.Replace, entry, sequence);

    /// <summary>RTM_DELNEIGH AF_BRIDGE, as <c>bridge fdb del MAC dev X dst IP self</c>.</summary>
    public static NetlinkMessageToken WriteDeleteFdb(ref NetlinkWriter writer, FdbEntrySpec entry, uint sequence) =>
        WriteFdb(ref writer, RtnetlinkConstants.RTM_DELNEIGH, RequestFlags.Acknowledged, entry, sequence);

    private static NetlinkMessageToken WriteFdb(ref NetlinkWriter writer, ushort type, ushort flags, FdbEntrySpec entry, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(type, flags, sequence);
        writer.WriteNdMsg(AddressFamilies.AF_BRIDGE, entry.LinkIndex, FdbState, NeighborConstants.NTF_SELF, 0);
        writer.WriteAttributeMac(NeighborConstants.NDA_LLADDR, entry.MacAddress);
        writer.WriteAttributeAddress(NeighborConstants.NDA_DST, entry.Destination);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>
    /// RTM_GETNEIGH dump of neighbours (AF_INET, AF_INET6 or AF_UNSPEC for both) on one link. Strict checking
    /// requires ndm_ifindex = 0 here; the link goes in NDA_IFINDEX, as <c>ip neigh show dev X</c> sends it.
    /// </summary>
    public static NetlinkMessageToken WriteDump(ref NetlinkWriter writer, byte family, int linkIndex, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETNEIGH, RequestFlags.Dump, sequence);
        writer.WriteNdMsg(family, 0, 0, 0, 0);
        if (linkIndex > 0)
        {
            writer.WriteAttributeUInt32(NeighborConstants.NDA_IFINDEX, (uint)linkIndex);
        }

        writer.EndMessage(message);
        return message;
    }

    /// <summary>
    /// RTM_GETNEIGH dump of the AF_BRIDGE FDB of one device: rtnl_fdb_dump takes the device from ndm_ifindex
    /// (the bridge port, or a vxlan device's own table).
    /// </summary>
    public static NetlinkMessageToken WriteFdbDump(ref NetlinkWriter writer, int linkIndex, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETNEIGH, RequestFlags.Dump, sequence);
        writer.WriteNdMsg(AddressFamilies.AF_BRIDGE, linkIndex, 0, 0, 0);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>The ndmsg family of a neighbour message payload (to tell FDB entries from neighbours).</summary>
    public static byte ReadFamily(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < NeighborConstants.NDMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct ndmsg", payload.Length, NeighborConstants.NDMSG_LEN);
        }

        return payload[0];
    }

    /// <summary>Decodes an AF_INET/AF_INET6 RTM_NEWNEIGH; null when it carries no NDA_DST.</summary>
    public static NeighborInfo? ReadNeighbor(ReadOnlySpan<byte> payload)
    {
        var (index, state, flags, destination, lladdr) = ReadCommon(payload);
        return destination is null
            ? null
            : new NeighborInfo { LinkIndex = index, Address = destination, LinkLayerAddress = lladdr, State = (NeighborState)state, Flags = (NeighborFlags)flags };
    }

    /// <summary>Decodes an AF_BRIDGE RTM_NEWNEIGH; null when it carries no 6-byte NDA_LLADDR.</summary>
    public static FdbEntryInfo? ReadFdbEntry(ReadOnlySpan<byte> payload)
    {
        var (index, state, flags, destination, lladdr) = ReadCommon(payload);
        return lladdr is not MacAddress mac
            ? null
            : new FdbEntryInfo { LinkIndex = index, MacAddress = mac, Destination = destination, State = (NeighborState)state, Flags = (NeighborFlags)flags };
    }

    private static (int Index, ushort State, byte Flags, IPAddress? Destination, MacAddress? LinkLayer) ReadCommon(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < NeighborConstants.NDMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct ndmsg", payload.Length, NeighborConstants.NDMSG_LEN);
        }

        int index = MemoryMarshal.Read<int>(payload[4..]);
        ushort state = MemoryMarshal.Read<ushort>(payload[8..]);
        byte flags = payload[10];
        IPAddress? destination = null;
        MacAddress? lladdr = null;
        var attributes = new NetlinkAttributeReader(payload[NeighborConstants.NDMSG_LEN..]);
        while (attributes.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case NeighborConstants.NDA_DST: destination = a.GetAddress(); break;
                case NeighborConstants.NDA_LLADDR: lladdr = a.GetMacOrNull(); break;
            }
        }

        return (index, state, flags, destination, lladdr);
    }

    /// <summary>Describes a neighbour for error messages.</summary>
    public static string Describe(NeighborSpec neighbor) =>
        string.Create(CultureInfo.InvariantCulture, $"{neighbor.Address} lladdr {neighbor.LinkLayerAddress} dev {neighbor.LinkIndex}");

    /// <summary>Describes an FDB entry for error messages.</summary>
    public static string Describe(FdbEntrySpec entry) =>
        string.Create(CultureInfo.InvariantCulture, $"fdb {entry.MacAddress} dev {entry.LinkIndex} dst {entry.Destination} self");
}
