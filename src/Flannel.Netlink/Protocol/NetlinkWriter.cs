using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Protocol;

/// <summary>
/// Writes netlink messages into caller-owned memory with no allocation: a fixed <see cref="Span{T}"/>, or an
/// <see cref="IBufferWriter{T}"/> that is asked for more memory on a non-inlined slow path.
/// </summary>
/// <remarks>
/// <para>
/// A message is framed by <see cref="BeginMessage"/> / <see cref="EndMessage"/>, a nested attribute by
/// <see cref="BeginNested"/> / <see cref="EndNested"/>: Begin reserves the header and returns a token, End
/// back-fills the length. Every attribute is padded to <c>NLA_ALIGN</c> as it is written, so a nest's and a
/// message's length include their last attribute's padding, exactly as iproute2's <c>addattr_l</c> and
/// <c>addattr_nest_end</c> compute them. Ending a token that is not the innermost open one, ending a message
/// with a nest still open, or writing an attribute outside a message throws
/// <see cref="InvalidOperationException"/>.
/// </para>
/// <para>
/// Byte order is explicit: the plain <c>Write…</c> methods use host order (netlink's order);
/// <see cref="WriteAttributeUInt16BigEndian"/> writes network order (e.g. <c>IFLA_VXLAN_PORT</c>). Several
/// messages may follow each other in one buffer, which is how a batch goes out in one <c>sendmsg</c>.
/// </para>
/// <para>
/// Ownership: the writer never rents or frees memory. With a span, <see cref="WrittenSpan"/> is the result.
/// With an <see cref="IBufferWriter{T}"/>, bytes of completed messages are advanced into it by
/// <see cref="Flush"/> (and by growth); an open message is always kept contiguous, so its lengths can be
/// back-filled.
/// </para>
/// </remarks>
internal ref struct NetlinkWriter
{
    private const int MaxDepth = 8;
    private const int DefaultSizeHint = 4096;

    private readonly IBufferWriter<byte>? _output;
    private Span<byte> _span;
    private int _base;          // absolute offset of _span[0]: bytes already advanced into _output
    private int _position;      // bytes written into _span
    private int _messageStart;  // absolute offset of the open message, or -1
    private int _depth;
    private NestOffsets _nests; // absolute offsets of the open nests, innermost at _depth - 1
    private int _messageCount;

    /// <summary>Writes into <paramref name="buffer"/>; running out of room throws <see cref="InvalidOperationException"/>.</summary>
    public NetlinkWriter(Span<byte> buffer)
    {
        _output = null;
        _span = buffer;
        _base = 0;
        _position = 0;
        _messageStart = -1;
        _depth = 0;
        _nests = default;
        _messageCount = 0;
    }

    /// <summary>Writes into <paramref name="output"/>, growing through it as needed. Call <see cref="Flush"/> at the end.</summary>
    public NetlinkWriter(IBufferWriter<byte> output, int sizeHint = DefaultSizeHint)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _span = output.GetSpan(Math.Max(sizeHint, NetlinkHeader.NLMSG_HDRLEN));
        _base = 0;
        _position = 0;
        _messageStart = -1;
        _depth = 0;
        _nests = default;
        _messageCount = 0;
    }

    /// <summary>Total bytes written, including any already flushed to an <see cref="IBufferWriter{T}"/>.</summary>
    public readonly int BytesWritten => _base + _position;

    /// <summary>Number of completed messages.</summary>
    public readonly int MessageCount => _messageCount;

    /// <summary>True while a message is open.</summary>
    public readonly bool IsMessageOpen => _messageStart >= 0;

    /// <summary>The bytes written and not yet flushed (with a span: everything written).</summary>
    public readonly ReadOnlySpan<byte> WrittenSpan => _span[.._position];

    /// <summary>
    /// Starts a message: writes an <c>nlmsghdr</c> with a zero length to be back-filled by
    /// <see cref="EndMessage"/>.
    /// </summary>
    /// <param name="type">nlmsg_type, e.g. RTM_NEWROUTE.</param>
    /// <param name="flags">nlmsg_flags (NLM_F_REQUEST is not added implicitly).</param>
    /// <param name="sequence">nlmsg_seq.</param>
    /// <param name="portId">nlmsg_pid; 0 lets the kernel fill in the sender.</param>
    public NetlinkMessageToken BeginMessage(ushort type, ushort flags, uint sequence, uint portId = 0)
    {
        if (_messageStart >= 0)
        {
            ThrowHelper.ThrowInvalidOperation("A netlink message is already open; end it before beginning another.");
        }

        Span<byte> header = Reserve(NetlinkHeader.NLMSG_HDRLEN);
        int start = _base + _position - NetlinkHeader.NLMSG_HDRLEN;
        WriteNative(header, 0u);
        WriteNative(header[4..], type);
        WriteNative(header[6..], flags);
        WriteNative(header[8..], sequence);
        WriteNative(header[12..], portId);
        _messageStart = start;
        return new NetlinkMessageToken(start, sequence);
    }

    /// <summary>Ends the message <paramref name="token"/> opened: pads to NLMSG_ALIGN and back-fills nlmsg_len.</summary>
    public void EndMessage(NetlinkMessageToken token)
    {
        if (_messageStart < 0 || token.Offset != _messageStart)
        {
            ThrowHelper.ThrowInvalidOperation("EndMessage was given a token that is not the open message.");
        }

        if (_depth != 0)
        {
            ThrowHelper.ThrowInvalidOperation("EndMessage was called with a nested attribute still open.");
        }

        PadTo(NetlinkAlignment.MessageAlign(_base + _position - _messageStart));
        int length = _base + _position - _messageStart;
        WriteNative(_span[(_messageStart - _base)..], (uint)length);
        _messageStart = -1;
        _messageCount++;
    }

    /// <summary>
    /// Hands the completed messages to the <see cref="IBufferWriter{T}"/> (Advance). No-op for a span writer.
    /// </summary>
    public void Flush()
    {
        if (_messageStart >= 0)
        {
            ThrowHelper.ThrowInvalidOperation("Flush was called with a message still open.");
        }

        if (_output is null || _position == 0)
        {
            return;
        }

        _output.Advance(_position);
        _base += _position;
        _position = 0;
        _span = _output.GetSpan(DefaultSizeHint);
    }

    /// <summary>Discards everything written since the last flush (a span writer starts over).</summary>
    public void Reset()
    {
        _position = 0;
        _messageStart = -1;
        _depth = 0;
        if (_output is null)
        {
            _base = 0;
            _messageCount = 0;
        }
    }

    /// <summary>
    /// Writes <c>struct ifinfomsg</c> (16 bytes): family, pad, type, index, flags, change.
    /// </summary>
    public void WriteIfInfoMsg(byte family, ushort deviceType, int index, uint flags, uint change)
    {
        Span<byte> s = ReserveInMessage(LinkConstants.IFINFOMSG_LEN);
        s[0] = family;
        s[1] = 0;
        WriteNative(s[2..], deviceType);
        WriteNative(s[4..], index);
        WriteNative(s[8..], flags);
        WriteNative(s[12..], change);
    }

    /// <summary>Writes <c>struct ifaddrmsg</c> (8 bytes): family, prefixlen, flags, scope, index.</summary>
    public void WriteIfAddrMsg(byte family, byte prefixLength, byte flags, byte scope, int index)
    {
        Span<byte> s = ReserveInMessage(AddressConstants.IFADDRMSG_LEN);
        s[0] = family;
        s[1] = prefixLength;
        s[2] = flags;
        s[3] = scope;
        WriteNative(s[4..], index);
    }

    /// <summary>
    /// Writes <c>struct rtmsg</c> (12 bytes): family, dst_len, src_len, tos, table, protocol, scope, type,
    /// flags.
    /// </summary>
    public void WriteRtMsg(byte family, byte destinationLength, byte sourceLength, byte tos, byte table, byte protocol, byte scope, byte type, uint flags)
    {
        Span<byte> s = ReserveInMessage(RtnetlinkConstants.RTMSG_LEN);
        s[0] = family;
        s[1] = destinationLength;
        s[2] = sourceLength;
        s[3] = tos;
        s[4] = table;
        s[5] = protocol;
        s[6] = scope;
        s[7] = type;
        WriteNative(s[8..], flags);
    }

    /// <summary>Writes <c>struct ndmsg</c> (12 bytes): family, pad1, pad2, ifindex, state, flags, type.</summary>
    public void WriteNdMsg(byte family, int index, ushort state, byte flags, byte type)
    {
        Span<byte> s = ReserveInMessage(NeighborConstants.NDMSG_LEN);
        s[0] = family;
        s[1] = 0;
        WriteNative(s[2..], (ushort)0);
        WriteNative(s[4..], index);
        WriteNative(s[8..], state);
        s[10] = flags;
        s[11] = type;
    }

    /// <summary>Writes <c>struct nhmsg</c> (8 bytes): family, scope, protocol, resvd, flags.</summary>
    public void WriteNhMsg(byte family, byte scope, byte protocol, uint flags)
    {
        Span<byte> s = ReserveInMessage(NexthopConstants.NHMSG_LEN);
        s[0] = family;
        s[1] = scope;
        s[2] = protocol;
        s[3] = 0;
        WriteNative(s[4..], flags);
    }

    /// <summary>Writes <c>struct genlmsghdr</c> (4 bytes): cmd, version, reserved.</summary>
    public void WriteGenlMsgHdr(byte command, byte version)
    {
        Span<byte> s = ReserveInMessage(GenericNetlinkConstants.GENL_HDRLEN);
        s[0] = command;
        s[1] = version;
        WriteNative(s[2..], (ushort)0);
    }

    /// <summary>
    /// Writes raw bytes inside the open message, e.g. a fixed header this writer has no method for
    /// (<c>struct nlmsgerr</c> when tests script the kernel's replies). No attribute header, no padding.
    /// </summary>
    public void WriteRaw(scoped ReadOnlySpan<byte> bytes) => bytes.CopyTo(ReserveInMessage(bytes.Length));

    /// <summary>Writes an attribute with an opaque payload.</summary>
    public void WriteAttribute(ushort type, scoped ReadOnlySpan<byte> payload)
    {
        Span<byte> s = ReserveAttribute(type, payload.Length);
        payload.CopyTo(s);
    }

    /// <summary>Writes a zero-length (flag) attribute.</summary>
    public void WriteAttributeFlag(ushort type) => ReserveAttribute(type, 0);

    /// <summary>Writes a u8 attribute.</summary>
    public void WriteAttributeUInt8(ushort type, byte value) => ReserveAttribute(type, 1)[0] = value;

    /// <summary>Writes a u16 attribute in host byte order.</summary>
    public void WriteAttributeUInt16(ushort type, ushort value) => WriteNative(ReserveAttribute(type, 2), value);

    /// <summary>Writes a u16 attribute in network byte order (e.g. <c>IFLA_VXLAN_PORT</c>).</summary>
    public void WriteAttributeUInt16BigEndian(ushort type, ushort value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ReserveAttribute(type, 2), value);

    /// <summary>Writes a u32 attribute in host byte order.</summary>
    public void WriteAttributeUInt32(ushort type, uint value) => WriteNative(ReserveAttribute(type, 4), value);

    /// <summary>Writes an s32 attribute in host byte order.</summary>
    public void WriteAttributeInt32(ushort type, int value) => WriteNative(ReserveAttribute(type, 4), value);

    /// <summary>
    /// Writes a string attribute (UTF-8), NUL-terminated unless <paramref name="nulTerminated"/> is false:
    /// iproute2 sends IFLA_IFNAME with its NUL and IFLA_INFO_KIND without (the kernel accepts both).
    /// </summary>
    public void WriteAttributeString(ushort type, string value, bool nulTerminated = true)
    {
        ArgumentNullException.ThrowIfNull(value);
        int length = Encoding.UTF8.GetByteCount(value);
        Span<byte> s = ReserveAttribute(type, nulTerminated ? length + 1 : length);
        Encoding.UTF8.GetBytes(value, s);
        if (nulTerminated)
        {
            s[length] = 0;
        }
    }

    /// <summary>Writes an address attribute (4 or 16 bytes, network order) via <see cref="IPAddress.TryWriteBytes"/>.</summary>
    public void WriteAttributeAddress(ushort type, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        int length = AddressLength(address);
        Span<byte> s = ReserveAttribute(type, length);
        if (!address.TryWriteBytes(s, out _))
        {
            ThrowHelper.ThrowInvalidOperation("The address could not be written.");
        }
    }

    /// <summary>Writes a 6-byte hardware address attribute.</summary>
    public void WriteAttributeMac(ushort type, MacAddress address) => address.TryWriteBytes(ReserveAttribute(type, 6));

    /// <summary>
    /// Opens a nested attribute. <paramref name="setNestedFlag"/> ORs NLA_F_NESTED into the type; iproute2 does
    /// not set it for IFLA_LINKINFO and friends, and the golden vectors follow iproute2.
    /// </summary>
    public NetlinkNestToken BeginNested(ushort type, bool setNestedFlag = false)
    {
        if (_depth == MaxDepth)
        {
            ThrowHelper.ThrowInvalidOperation("Nested attributes are more than 8 deep.");
        }

        Span<byte> s = ReserveInMessage(NetlinkHeader.NLA_HDRLEN);
        int offset = _base + _position - NetlinkHeader.NLA_HDRLEN;
        WriteNative(s, (ushort)0);
        WriteNative(s[2..], setNestedFlag ? (ushort)(type | NetlinkHeader.NLA_F_NESTED) : type);
        _nests[_depth] = offset;
        _depth++;
        return new NetlinkNestToken(offset, _depth);
    }

    /// <summary>Closes the innermost nested attribute, back-filling its nla_len.</summary>
    public void EndNested(NetlinkNestToken token)
    {
        if (_depth == 0 || token.Depth != _depth || _nests[_depth - 1] != token.Offset)
        {
            ThrowHelper.ThrowInvalidOperation("EndNested was given a token that is not the innermost open nested attribute.");
        }

        int length = _base + _position - token.Offset;
        if (length > ushort.MaxValue)
        {
            ThrowHelper.ThrowInvalidOperation("A nested attribute is longer than 65535 bytes.");
        }

        WriteNative(_span[(token.Offset - _base)..], (ushort)length);
        _depth--;
    }

    /// <summary>Reserves header + padded payload for an attribute and returns the payload span.</summary>
    private Span<byte> ReserveAttribute(ushort type, int payloadLength)
    {
        int space = NetlinkAlignment.AttributeSpace(payloadLength);
        Span<byte> s = ReserveInMessage(space);
        WriteNative(s, (ushort)(NetlinkHeader.NLA_HDRLEN + payloadLength));
        WriteNative(s[2..], type);
        s[(NetlinkHeader.NLA_HDRLEN + payloadLength)..].Clear(); // padding
        return s.Slice(NetlinkHeader.NLA_HDRLEN, payloadLength);
    }

    private Span<byte> ReserveInMessage(int length)
    {
        if (_messageStart < 0)
        {
            ThrowHelper.ThrowInvalidOperation("Attributes and fixed headers can only be written inside a message; call BeginMessage first.");
        }

        return Reserve(length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Reserve(int length)
    {
        if (_span.Length - _position < length)
        {
            Grow(length);
        }

        Span<byte> s = _span.Slice(_position, length);
        _position += length;
        return s;
    }

    private void PadTo(int alignedLength)
    {
        int padding = alignedLength - (_base + _position - _messageStart);
        if (padding > 0)
        {
            Reserve(padding).Clear();
        }
    }

    /// <summary>
    /// The slow path: advance completed messages into the output and move the open message (kept contiguous so
    /// its lengths can still be back-filled) to the start of a larger span.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grow(int needed)
    {
        if (_output is null)
        {
            ThrowHelper.ThrowBufferTooSmall(needed, _span.Length - _position);
            return;
        }

        int keepFrom = _messageStart >= 0 ? _messageStart - _base : _position;
        int keepLength = _position - keepFrom;
        Span<byte> old = _span;
        if (keepFrom > 0)
        {
            _output.Advance(keepFrom);
            _base += keepFrom;
        }

        Span<byte> next = _output.GetSpan(Math.Max(keepLength + needed, Math.Max(DefaultSizeHint, old.Length * 2)));
        old.Slice(keepFrom, keepLength).CopyTo(next);
        _span = next;
        _position = keepLength;
    }

    private static int AddressLength(IPAddress address) => address.AddressFamily switch
    {
        AddressFamily.InterNetwork => 4,
        AddressFamily.InterNetworkV6 => 16,
        _ => throw new ArgumentException($"Address family {address.AddressFamily} cannot be written to netlink.", nameof(address)),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteNative<T>(Span<byte> destination, T value)
        where T : unmanaged => MemoryMarshal.Write(destination, in value);

    [InlineArray(MaxDepth)]
    private struct NestOffsets
    {
        private int _element0;
    }
}
