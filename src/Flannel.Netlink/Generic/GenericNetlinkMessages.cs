using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.Generic;

/// <summary>
/// The generic netlink controller (<c>nlctrl</c>): resolving a family name such as <c>wireguard</c> to the
/// message type the kernel assigned it when the module registered.
/// </summary>
/// <remarks>
/// <code>
/// +--------------------------------------+
/// | struct nlmsghdr            16 bytes  |  nlmsg_type GENL_ID_CTRL (0x10), REQUEST|ACK
/// +--------------------------------------+
/// | struct genlmsghdr           4 bytes  |
/// |  u8 cmd CTRL_CMD_GETFAMILY (3)       |
/// |  u8 version 1 | u16 reserved 0       |
/// +--------------------------------------+
/// | CTRL_ATTR_FAMILY_NAME "wireguard\0"  |
/// +--------------------------------------+
/// reply: CTRL_CMD_NEWFAMILY with CTRL_ATTR_FAMILY_ID (u16), CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_VERSION (u32),
/// CTRL_ATTR_HDRSIZE (u32), CTRL_ATTR_MAXATTR (u32), CTRL_ATTR_OPS, CTRL_ATTR_MCAST_GROUPS; then the ack.
/// An unknown family is refused with ENOENT (the module is not loaded).
/// </code>
/// The request is byte-identical to the one wireguard-tools sends (TestData/genl-getfamily-wireguard.hex).
/// </remarks>
internal static class GenericNetlinkMessages
{
    /// <summary>CTRL_CMD_GETFAMILY for <paramref name="familyName"/>.</summary>
    public static NetlinkMessageToken WriteGetFamily(ref NetlinkWriter writer, string familyName, uint sequence)
    {
        ArgumentException.ThrowIfNullOrEmpty(familyName);
        if (familyName.Length >= GenericNetlinkConstants.GENL_NAMSIZ)
        {
            throw new ArgumentException($"A generic netlink family name has at most {GenericNetlinkConstants.GENL_NAMSIZ - 1} characters: '{familyName}'.", nameof(familyName));
        }

        NetlinkMessageToken message = writer.BeginMessage(GenericNetlinkConstants.GENL_ID_CTRL, RequestFlags.Acknowledged, sequence);
        writer.WriteGenlMsgHdr(GenericNetlinkConstants.CTRL_CMD_GETFAMILY, GenericNetlinkConstants.CTRL_VERSION);
        writer.WriteAttributeString(GenericNetlinkConstants.CTRL_ATTR_FAMILY_NAME, familyName);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>Decodes a CTRL_CMD_NEWFAMILY reply (the payload after the nlmsghdr).</summary>
    /// <exception cref="NetlinkProtocolException">The reply is not a family description or lacks its id.</exception>
    public static GenericNetlinkFamily DecodeFamily(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < GenericNetlinkConstants.GENL_HDRLEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct genlmsghdr", payload.Length, GenericNetlinkConstants.GENL_HDRLEN);
        }

        if (payload[0] != GenericNetlinkConstants.CTRL_CMD_NEWFAMILY)
        {
            ThrowHelper.ThrowMalformed($"the controller replied with command {payload[0]}, not CTRL_CMD_NEWFAMILY");
        }

        ushort? id = null;
        string? name = null;
        uint version = 0, headerSize = 0, maxAttribute = 0;
        var groups = new List<GenericNetlinkMulticastGroup>();
        var attributes = new NetlinkAttributeReader(payload[GenericNetlinkConstants.GENL_HDRLEN..]);
        while (attributes.TryRead(out NetlinkAttribute attribute))
        {
            switch (attribute.Type)
            {
                case GenericNetlinkConstants.CTRL_ATTR_FAMILY_ID:
                    id = attribute.GetUInt16();
                    break;
                case GenericNetlinkConstants.CTRL_ATTR_FAMILY_NAME:
                    name = attribute.GetString();
                    break;
                case GenericNetlinkConstants.CTRL_ATTR_VERSION:
                    version = attribute.GetUInt32();
                    break;
                case GenericNetlinkConstants.CTRL_ATTR_HDRSIZE:
                    headerSize = attribute.GetUInt32();
                    break;
                case GenericNetlinkConstants.CTRL_ATTR_MAXATTR:
                    maxAttribute = attribute.GetUInt32();
                    break;
                case GenericNetlinkConstants.CTRL_ATTR_MCAST_GROUPS:
                    DecodeGroups(attribute.Nested, groups);
                    break;
            }
        }

        if (id is not ushort familyId || name is null)
        {
            return ThrowHelper.ThrowMalformed<GenericNetlinkFamily>("CTRL_CMD_NEWFAMILY lacks CTRL_ATTR_FAMILY_ID or CTRL_ATTR_FAMILY_NAME");
        }

        return new GenericNetlinkFamily(name, familyId, version, headerSize, maxAttribute, groups);
    }

    private static void DecodeGroups(NetlinkAttributeReader groups, List<GenericNetlinkMulticastGroup> into)
    {
        while (groups.TryRead(out NetlinkAttribute group))
        {
            string? name = null;
            uint? id = null;
            NetlinkAttributeReader fields = group.Nested;
            while (fields.TryRead(out NetlinkAttribute field))
            {
                switch (field.Type)
                {
                    case GenericNetlinkConstants.CTRL_ATTR_MCAST_GRP_NAME:
                        name = field.GetString();
                        break;
                    case GenericNetlinkConstants.CTRL_ATTR_MCAST_GRP_ID:
                        id = field.GetUInt32();
                        break;
                }
            }

            if (name is not null && id is uint groupId)
            {
                into.Add(new GenericNetlinkMulticastGroup(name, groupId));
            }
        }
    }
}

/// <summary>A generic netlink family as the controller describes it.</summary>
/// <param name="Name">The family name, e.g. <c>wireguard</c>.</param>
/// <param name="Id">The nlmsg_type of the family's messages (assigned when its module registered).</param>
/// <param name="Version">The family's version.</param>
/// <param name="HeaderSize">Bytes of family header after <c>genlmsghdr</c> (0 for wireguard).</param>
/// <param name="MaxAttribute">The highest top-level attribute number.</param>
/// <param name="MulticastGroups">The family's notification groups.</param>
internal sealed record GenericNetlinkFamily(string Name, ushort Id, uint Version, uint HeaderSize, uint MaxAttribute, IReadOnlyList<GenericNetlinkMulticastGroup> MulticastGroups);

/// <summary>A multicast group of a generic netlink family.</summary>
internal sealed record GenericNetlinkMulticastGroup(string Name, uint Id);
