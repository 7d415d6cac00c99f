using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Protocol;

/// <summary>One message of a received datagram: the <c>nlmsghdr</c> fields and a view of its payload.</summary>
internal readonly ref struct NetlinkMessage
{
    public NetlinkMessage(ushort type, ushort flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Payload = payload;
    }

    /// <summary>nlmsg_type.</summary>
    public ushort Type { get; }

    /// <summary>nlmsg_flags.</summary>
    public ushort Flags { get; }

    /// <summary>nlmsg_seq.</summary>
    public uint Sequence { get; }

    /// <summary>nlmsg_pid.</summary>
    public uint PortId { get; }

    /// <summary>The bytes after the 16-byte header, up to nlmsg_len.</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>NLM_F_MULTI: part of a multipart (dump) reply that ends with NLMSG_DONE.</summary>
    public bool IsMultipart => (Flags & NetlinkHeader.NLM_F_MULTI) != 0;

    /// <summary>NLM_F_DUMP_INTR: the dump changed while it was being read; its result is inconsistent.</summary>
    public bool IsDumpInterrupted => (Flags & NetlinkHeader.NLM_F_DUMP_INTR) != 0;

    /// <summary>NLMSG_ERROR (an error or, with errno 0, an acknowledgement).</summary>
    public bool IsError => Type == NetlinkHeader.NLMSG_ERROR;

    /// <summary>NLMSG_DONE.</summary>
    public bool IsDone => Type == NetlinkHeader.NLMSG_DONE;
}

/// <summary>
/// Walks the messages of a received buffer. Each <c>nlmsg_len</c> is validated once, against the bytes left.
/// </summary>
/// <remarks>
/// Failure modes follow the Kestrel split: when the bytes left cannot hold the next message (fewer than a header,
/// or fewer than its nlmsg_len) <see cref="TryRead"/> returns false and <see cref="Remaining"/> says how much was
/// left; a header whose nlmsg_len is below 16 is malformed and throws <see cref="NetlinkProtocolException"/>.
/// </remarks>
internal ref struct NetlinkMessageReader
{
    private ReadOnlySpan<byte> _remaining;

    public NetlinkMessageReader(ReadOnlySpan<byte> buffer) => _remaining = buffer;

    /// <summary>Bytes not yet consumed.</summary>
    public readonly int Remaining => _remaining.Length;

    /// <summary>Reads the next message, or returns false when the rest is empty or incomplete.</summary>
    public bool TryRead(out NetlinkMessage message)
    {
        if (_remaining.Length < NetlinkHeader.NLMSG_HDRLEN)
        {
            message = default;
            return false;
        }

        uint length = MemoryMarshal.Read<uint>(_remaining);
        if (length < NetlinkHeader.NLMSG_HDRLEN)
        {
            ThrowHelper.ThrowMessageLength(length, _remaining.Length);
        }

        if (length > (uint)_remaining.Length)
        {
            message = default;
            return false;
        }

        int len = (int)length;
        message = new NetlinkMessage(
            MemoryMarshal.Read<ushort>(_remaining[4..]),
            MemoryMarshal.Read<ushort>(_remaining[6..]),
            MemoryMarshal.Read<uint>(_remaining[8..]),
            MemoryMarshal.Read<uint>(_remaining[12..]),
            _remaining[NetlinkHeader.NLMSG_HDRLEN..len]);
        int advance = Math.Min(NetlinkAlignment.MessageAlign(len), _remaining.Length);
        _remaining = _remaining[advance..];
        return true;
    }
}
