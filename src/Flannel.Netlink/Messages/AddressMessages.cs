using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>Addresses: RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR dump, and the decoder of RTM_NEWADDR.</summary>
/// <remarks>
/// <code>
/// +--------------------------------------+
/// | struct nlmsghdr            16 bytes  |
/// +--------------------------------------+
/// | struct ifaddrmsg            8 bytes  |
/// |  u8 family | u8 prefixlen            |
/// |  u8 flags  | u8 scope                |
/// |  u32 index                           |
/// +--------------------------------------+
/// | IFA_LOCAL    the address             |
/// | IFA_ADDRESS  the address (peer on    |
/// |              point-to-point links)   |
/// +--------------------------------------+
/// </code>
/// </remarks>
internal static class AddressMessages
{
    /// <summary>RTM_NEWADDR (CREATE|EXCL), as <c>ip addr add A/P dev X</c>.</summary>
    public static NetlinkMessageToken WriteAdd(ref NetlinkWriter writer, int linkIndex, IPNetwork address, uint sequence) =>
        WriteAdd(ref writer, linkIndex, address.BaseAddress, address.PrefixLength, sequence);

    /// <summary>RTM_NEWADDR (CREATE|EXCL) of <paramref name="local"/>/<paramref name="prefixLength"/> (host bits allowed).</summary>
    public static NetlinkMessageToken WriteAdd(ref NetlinkWriter writer, int linkIndex, IPAddress local, int prefixLength, uint sequence) =>
        Write(ref writer, RtnetlinkConstants.RTM_NEWADDR, RequestFlags.CreateExclusive, linkIndex, local, prefixLength, sequence);

    /// <summary>RTM_DELADDR, as <c>ip addr del A/P dev X</c>.</summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, int linkIndex, IPNetwork address, uint sequence) =>
        WriteDelete(ref writer, linkIndex, address.BaseAddress, address.PrefixLength, sequence);

    /// <summary>RTM_DELADDR of an address with host bits (as dumped: <paramref name="local"/>/<paramref name="prefixLength"/>).</summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, int linkIndex, IPAddress local, int prefixLength, uint sequence) =>
        Write(ref writer, RtnetlinkConstants.RTM_DELADDR, RequestFlags.Acknowledged, linkIndex, local, prefixLength, sequence);

    /// <summary>RTM_GETADDR dump of one family (AF_UNSPEC for both), filtered by link when given.</summary>
    public static NetlinkMessageToken WriteDump(ref NetlinkWriter writer, byte family, int linkIndex, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETADDR, RequestFlags.Dump, sequence);
        writer.WriteIfAddrMsg(family, 0, 0, 0, linkIndex);
        writer.EndMessage(message);
        return message;
    }

    private static NetlinkMessageToken Write(ref NetlinkWriter writer, ushort type, ushort flags, int linkIndex, IPAddress address, int prefixLength, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(type, flags, sequence);
        writer.WriteIfAddrMsg(FamilyCodes.Of(address), (byte)prefixLength, 0, RtnetlinkConstants.RT_SCOPE_UNIVERSE, linkIndex);
        writer.WriteAttributeAddress(AddressConstants.IFA_LOCAL, address);
        writer.WriteAttributeAddress(AddressConstants.IFA_ADDRESS, address);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>Decodes the payload of an RTM_NEWADDR / RTM_DELADDR message.</summary>
    public static AddressInfo Read(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < AddressConstants.IFADDRMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct ifaddrmsg", payload.Length, AddressConstants.IFADDRMSG_LEN);
        }

        byte prefixLength = payload[1];
        uint flags = payload[2];
        byte scope = payload[3];
        int index = MemoryMarshal.Read<int>(payload[4..]);
        IPAddress? local = null, address = null;
        var attributes = new NetlinkAttributeReader(payload[AddressConstants.IFADDRMSG_LEN..]);
        while (attributes.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case AddressConstants.IFA_LOCAL: local = a.GetAddress(); break;
                case AddressConstants.IFA_ADDRESS: address = a.GetAddress(); break;
                case AddressConstants.IFA_FLAGS: flags = a.GetUInt32(); break;
            }
        }

        IPAddress value = local ?? address ?? ThrowHelper.ThrowMalformed<IPAddress>("RTM_NEWADDR without IFA_LOCAL or IFA_ADDRESS");
        return new AddressInfo
        {
            LinkIndex = index,
            Address = FamilyCodes.Network(value, prefixLength),
            Local = value,
            Scope = (RouteScope)scope,
            Flags = (AddressFlags)flags,
        };
    }

    /// <summary>Describes an address operation for error messages.</summary>
    public static string Describe(int linkIndex, IPAddress local, int prefixLength) =>
        string.Create(CultureInfo.InvariantCulture, $"{local}/{prefixLength} dev {linkIndex}");
}
