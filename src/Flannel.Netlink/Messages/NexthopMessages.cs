using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Messages;

/// <summary>
/// Nexthop objects (Linux 5.3+): RTM_NEWNEXTHOP, RTM_DELNEXTHOP, RTM_GETNEXTHOP dump, and the decoder. A route
/// that names a nexthop by RTA_NH_ID skips the per-route gateway resolution that makes classic routes slow at
/// scale.
/// </summary>
/// <remarks>
/// <code>
/// +--------------------------------------------+
/// | struct nlmsghdr                  16 bytes  |
/// +--------------------------------------------+
/// | struct nhmsg                      8 bytes  |
/// |  u8 family | u8 scope | u8 protocol | u8 0 |
/// |  u32 flags (RTNH_F_ONLINK = 4)             |
/// +--------------------------------------------+
/// | NHA_ID       u32 object id                 |
/// | NHA_GATEWAY  gateway                       |
/// | NHA_OIF      u32 output ifindex            |
/// +--------------------------------------------+
/// </code>
/// </remarks>
internal static class NexthopMessages
{
    /// <summary>RTM_NEWNEXTHOP REPLACE|CREATE (<c>ip nexthop replace id N via GW dev X onlink</c>).</summary>
    public static NetlinkMessageToken WriteReplace(ref NetlinkWriter writer, NexthopSpec nexthop, uint sequence) =>
        Write(ref writer, RequestFlags.Replace, nexthop, sequence);

    /// <summary>RTM_NEWNEXTHOP CREATE|EXCL (<c>ip nexthop add …</c>).</summary>
    public static NetlinkMessageToken WriteAdd(ref NetlinkWriter writer, NexthopSpec nexthop, uint sequence) =>
        Write(ref writer, RequestFlags.CreateExclusive, nexthop, sequence);

    private static NetlinkMessageToken Write(ref NetlinkWriter writer, ushort flags, NexthopSpec nexthop, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_NEWNEXTHOP, flags, sequence);
        writer.WriteNhMsg(FamilyCodes.Of(nexthop.Gateway), RtnetlinkConstants.RT_SCOPE_UNIVERSE, nexthop.Protocol, nexthop.OnLink ? RtnetlinkConstants.RTNH_F_ONLINK : 0);
        writer.WriteAttributeUInt32(NexthopConstants.NHA_ID, nexthop.Id);
        writer.WriteAttributeAddress(NexthopConstants.NHA_GATEWAY, nexthop.Gateway);
        writer.WriteAttributeUInt32(NexthopConstants.NHA_OIF, (uint)nexthop.LinkIndex);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_DELNEXTHOP by id (<c>ip nexthop del id N</c>).</summary>
    public static NetlinkMessageToken WriteDelete(ref NetlinkWriter writer, uint id, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_DELNEXTHOP, RequestFlags.Acknowledged, sequence);
        writer.WriteNhMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0);
        writer.WriteAttributeUInt32(NexthopConstants.NHA_ID, id);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>RTM_GETNEXTHOP dump (the kernel rejects protocol filters in the header; callers filter).</summary>
    public static NetlinkMessageToken WriteDump(ref NetlinkWriter writer, uint sequence)
    {
        NetlinkMessageToken message = writer.BeginMessage(RtnetlinkConstants.RTM_GETNEXTHOP, RequestFlags.Dump, sequence);
        writer.WriteNhMsg(AddressFamilies.AF_UNSPEC, 0, 0, 0);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>Decodes the payload of an RTM_NEWNEXTHOP message.</summary>
    public static NexthopInfo Read(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < NexthopConstants.NHMSG_LEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct nhmsg", payload.Length, NexthopConstants.NHMSG_LEN);
        }

        byte protocol = payload[2];
        uint flags = MemoryMarshal.Read<uint>(payload[4..]);
        uint? id = null;
        IPAddress? gateway = null;
        int? oif = null;
        var attributes = new NetlinkAttributeReader(payload[NexthopConstants.NHMSG_LEN..]);
        while (attributes.TryRead(out NetlinkAttribute a))
        {
            switch (a.Type)
            {
                case NexthopConstants.NHA_ID: id = a.GetUInt32(); break;
                case NexthopConstants.NHA_GATEWAY: gateway = a.GetAddress(); break;
                case NexthopConstants.NHA_OIF: oif = a.GetInt32(); break;
            }
        }

        return new NexthopInfo
        {
            Id = id ?? ThrowHelper.ThrowMalformed<uint>("RTM_NEWNEXTHOP without NHA_ID"),
            Gateway = gateway,
            LinkIndex = oif,
            OnLink = (flags & RtnetlinkConstants.RTNH_F_ONLINK) != 0,
            Protocol = protocol,
        };
    }

    /// <summary>Describes a nexthop for error messages.</summary>
    public static string Describe(NexthopSpec nexthop) =>
        string.Create(CultureInfo.InvariantCulture, $"nexthop id {nexthop.Id} via {nexthop.Gateway} dev {nexthop.LinkIndex}{(nexthop.OnLink ? " onlink" : string.Empty)}");
}
