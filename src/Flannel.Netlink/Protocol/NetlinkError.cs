using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Protocol;

/// <summary>
/// A decoded NLMSG_ERROR: an acknowledgement when <see cref="Errno"/> is 0, otherwise the kernel's refusal
/// with the extended-ack text and offset when it sent them.
/// </summary>
/// <remarks>
/// <code>
///  struct nlmsgerr                    then, with NLM_F_ACK_TLVS in the reply's flags:
/// +--------------------+             +------------------------------+
/// | int error (-errno) |             | NLMSGERR_ATTR_MSG  (string)  |
/// +--------------------+             | NLMSGERR_ATTR_OFFS (u32)     |
/// | struct nlmsghdr msg| 16 bytes    | ...                          |
/// | [request payload]  | absent with +------------------------------+
/// +--------------------+ NLM_F_CAPPED
/// </code>
/// </remarks>
internal readonly record struct NetlinkError(int Errno, uint Sequence, string? AckMessage, uint? AckOffset)
{
    /// <summary>Decodes the payload of an NLMSG_ERROR message.</summary>
    public static NetlinkError Parse(in NetlinkMessage message)
    {
        ReadOnlySpan<byte> payload = message.Payload;
        if (payload.Length < 4)
        {
            ThrowHelper.ThrowHeaderTooShort("struct nlmsgerr", payload.Length, 4);
        }

        int error = MemoryMarshal.Read<int>(payload);
        if (error > 0 || error == int.MinValue)
        {
            ThrowHelper.ThrowMalformed("NLMSG_ERROR carries a positive or out-of-range error code");
        }

        string? text = null;
        uint? offset = null;
        if ((message.Flags & NetlinkHeader.NLM_F_ACK_TLVS) != 0 && payload.Length >= 4 + NetlinkHeader.NLMSG_HDRLEN)
        {
            int requestLength = NetlinkHeader.NLMSG_HDRLEN;
            if ((message.Flags & NetlinkHeader.NLM_F_CAPPED) == 0)
            {
                uint original = MemoryMarshal.Read<uint>(payload[4..]);
                if (original < NetlinkHeader.NLMSG_HDRLEN || original > (uint)(payload.Length - 4))
                {
                    ThrowHelper.ThrowMalformed("NLMSG_ERROR echoes a request longer than the reply");
                }

                requestLength = NetlinkAlignment.MessageAlign((int)original);
            }

            int tlvStart = Math.Min(4 + requestLength, payload.Length);
            var attributes = new NetlinkAttributeReader(payload[tlvStart..]);
            while (attributes.TryRead(out NetlinkAttribute attribute))
            {
                switch (attribute.Type)
                {
                    case NetlinkHeader.NLMSGERR_ATTR_MSG:
                        text = attribute.GetString();
                        break;
                    case NetlinkHeader.NLMSGERR_ATTR_OFFS:
                        offset = attribute.GetUInt32();
                        break;
                }
            }
        }

        return new NetlinkError(-error, message.Sequence, text, offset);
    }

    /// <summary>
    /// Decodes the payload of an NLMSG_DONE: an int (0, or -errno when the dump itself failed, e.g. a
    /// request strict checking rejected), followed with NLM_F_ACK_TLVS by extended-ack attributes.
    /// </summary>
    public static NetlinkError ParseDone(in NetlinkMessage message)
    {
        ReadOnlySpan<byte> payload = message.Payload;
        if (payload.Length < 4)
        {
            return new NetlinkError(0, message.Sequence, null, null);
        }

        int error = MemoryMarshal.Read<int>(payload);
        if (error > 0 || error == int.MinValue)
        {
            ThrowHelper.ThrowMalformed("NLMSG_DONE carries a positive or out-of-range error code");
        }

        string? text = null;
        uint? offset = null;
        if ((message.Flags & NetlinkHeader.NLM_F_ACK_TLVS) != 0)
        {
            var attributes = new NetlinkAttributeReader(payload[4..]);
            while (attributes.TryRead(out NetlinkAttribute attribute))
            {
                if (attribute.Type == NetlinkHeader.NLMSGERR_ATTR_MSG)
                {
                    text = attribute.GetString();
                }
                else if (attribute.Type == NetlinkHeader.NLMSGERR_ATTR_OFFS)
                {
                    offset = attribute.GetUInt32();
                }
            }
        }

        return new NetlinkError(-error, message.Sequence, text, offset);
    }

    /// <summary>True for an acknowledgement (errno 0).</summary>
    public bool IsAck => Errno == 0;
}
