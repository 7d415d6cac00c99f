using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Flannel.Netlink.Interop;

namespace Flannel.Netlink.Icmp;

/// <summary>
/// The ICMP echo request the probes send, and the decoder of what a raw ICMP socket receives.
/// </summary>
/// <remarks>
/// An echo request (RFC 792 for IPv4, RFC 4443 for IPv6; the same 8-byte header):
/// <code>
///  0        8        16                31
/// +--------+--------+-----------------+
/// | type   | code 0 | checksum        |   type 8 (ICMP_ECHO) or 128 (ICMPV6_ECHO_REQUEST)
/// +--------+--------+-----------------+
/// | identifier      | sequence        |   both big-endian
/// +-----------------+-----------------+
/// | cookie (8 bytes, big-endian)      |   the socket's random cookie: a reply must echo it
/// | "flannel!" (8 bytes)              |   makes the probe recognisable in a capture
/// +-----------------------------------+
/// </code>
/// The IPv4 checksum is the RFC 1071 one's-complement sum over the ICMP message; for IPv6 the kernel computes it
/// (raw ICMPv6 sockets always checksum at offset 2, RFC 3542), so it is left zero.
/// <para>
/// A raw IPv4 socket receives the IP header first (its length is IHL × 4); a raw IPv6 socket receives the ICMPv6
/// message only, the sender coming from recvfrom. An error message (destination unreachable, time exceeded,
/// packet too big) quotes the offending packet after its own 8-byte header: an IP header (IPv4: IHL × 4 bytes;
/// IPv6: 40 bytes, extension headers are not followed) and at least the first 8 bytes of its payload, which is
/// enough for the echo identifier and sequence.
/// </para>
/// </remarks>
internal static class IcmpMessages
{
    /// <summary>Size of the ICMP (and ICMPv6) header.</summary>
    public const int HeaderLength = 8;

    /// <summary>Size of the payload the probes carry: the cookie and the marker.</summary>
    public const int PayloadLength = 16;

    /// <summary>Size of a whole echo request as written by <see cref="WriteEchoRequest"/>.</summary>
    public const int EchoRequestLength = HeaderLength + PayloadLength;

    private const int Ipv6HeaderLength = 40;

    // "flannel!" marks our probes in a packet capture.
    private static ReadOnlySpan<byte> Marker => "flannel!"u8;

    /// <summary>Writes an echo request into <paramref name="destination"/> and returns its length.</summary>
    public static int WriteEchoRequest(Span<byte> destination, AddressFamily family, ushort identifier, ushort sequence, ulong cookie)
    {
        if (destination.Length < EchoRequestLength)
        {
            throw new ArgumentException($"An echo request needs {EchoRequestLength} bytes.", nameof(destination));
        }

        Span<byte> message = destination[..EchoRequestLength];
        message[0] = family == AddressFamily.InterNetworkV6 ? Icmp6Constants.ICMPV6_ECHO_REQUEST : Icmp4Constants.ICMP_ECHO;
        message[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message[2..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(message[4..], identifier);
        BinaryPrimitives.WriteUInt16BigEndian(message[6..], sequence);
        BinaryPrimitives.WriteUInt64BigEndian(message[8..], cookie);
        Marker.CopyTo(message[16..]);
        if (family != AddressFamily.InterNetworkV6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(message[2..], Checksum(message));
        }

        return EchoRequestLength;
    }

    /// <summary>The RFC 1071 Internet checksum of <paramref name="data"/> (the checksum field must be zero).</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }

        if (i < data.Length)
        {
            sum += (uint)(data[i] << 8);
        }

        while (sum >> 16 != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    /// <summary>
    /// Decodes what a raw IPv4 ICMP socket received (IP header included). False for anything that is not an echo
    /// reply or an error about an echo request, and for truncated or malformed input.
    /// </summary>
    public static bool TryReadIPv4(ReadOnlySpan<byte> datagram, out IcmpMessage message)
    {
        message = default;
        if (!TryReadIPv4Header(datagram, out int headerLength, out byte protocol, out IPAddress? source, out _)
            || protocol != Icmp4Constants.IPPROTO_ICMP)
        {
            return false;
        }

        ReadOnlySpan<byte> icmp = datagram[headerLength..];
        if (icmp.Length < HeaderLength)
        {
            return false;
        }

        byte type = icmp[0];
        byte code = icmp[1];
        switch (type)
        {
            case Icmp4Constants.ICMP_ECHOREPLY:
                return TryReadEchoReply(icmp, source, out message);
            case Icmp4Constants.ICMP_DEST_UNREACH:
            case Icmp4Constants.ICMP_TIME_EXCEEDED:
                IcmpMessageKind kind = type == Icmp4Constants.ICMP_DEST_UNREACH ? IcmpMessageKind.DestinationUnreachable : IcmpMessageKind.TimeExceeded;
                IcmpUnreachableReason reason = kind == IcmpMessageKind.TimeExceeded ? IcmpUnreachableReason.None : ReasonFromIPv4Code(code);
                int mtu = reason == IcmpUnreachableReason.FragmentationNeeded ? BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]) : 0;
                ReadOnlySpan<byte> quoted = icmp[HeaderLength..];
                if (!TryReadIPv4Header(quoted, out int quotedHeaderLength, out byte quotedProtocol, out _, out IPAddress? quotedDestination, requireWholePacket: false))
                {
                    return false;
                }

                return quotedProtocol == Icmp4Constants.IPPROTO_ICMP && TryReadQuotedEcho(
                    new IcmpMessage { Kind = kind, From = source, Reason = reason, QuotedDestination = quotedDestination, NextHopMtu = mtu },
                    Icmp4Constants.ICMP_ECHO,
                    quoted[quotedHeaderLength..],
                    out message);
            default:
                return false;
        }
    }

    /// <summary>
    /// Decodes what a raw ICMPv6 socket received (no IP header; <paramref name="source"/> comes from recvfrom).
    /// </summary>
    public static bool TryReadIPv6(ReadOnlySpan<byte> icmp, IPAddress source, out IcmpMessage message)
    {
        ArgumentNullException.ThrowIfNull(source);
        message = default;
        if (icmp.Length < HeaderLength)
        {
            return false;
        }

        byte type = icmp[0];
        byte code = icmp[1];
        IcmpMessageKind kind;
        switch (type)
        {
            case Icmp6Constants.ICMPV6_ECHO_REPLY:
                return TryReadEchoReply(icmp, source, out message);
            case Icmp6Constants.ICMPV6_DEST_UNREACH:
                kind = IcmpMessageKind.DestinationUnreachable;
                break;
            case Icmp6Constants.ICMPV6_TIME_EXCEED:
                kind = IcmpMessageKind.TimeExceeded;
                break;
            case Icmp6Constants.ICMPV6_PKT_TOOBIG:
                kind = IcmpMessageKind.PacketTooBig;
                break;
            default:
                return false;
        }

        ReadOnlySpan<byte> quoted = icmp[HeaderLength..];
        if (quoted.Length < Ipv6HeaderLength || quoted[0] >> 4 != 6)
        {
            return false;
        }

        IcmpUnreachableReason reason = kind == IcmpMessageKind.DestinationUnreachable ? ReasonFromIPv6Code(code) : IcmpUnreachableReason.None;
        int mtu = kind == IcmpMessageKind.PacketTooBig ? (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(icmp[4..]), int.MaxValue) : 0;
        var quotedDestination = new IPAddress(quoted.Slice(24, 16));
        return quoted[6] == Icmp6Constants.IPPROTO_ICMPV6 && TryReadQuotedEcho(
            new IcmpMessage { Kind = kind, From = source, Reason = reason, QuotedDestination = quotedDestination, NextHopMtu = mtu },
            Icmp6Constants.ICMPV6_ECHO_REQUEST,
            quoted[Ipv6HeaderLength..],
            out message);
    }

    private static bool TryReadEchoReply(ReadOnlySpan<byte> icmp, IPAddress source, out IcmpMessage message)
    {
        ulong cookie = icmp.Length >= HeaderLength + 8 ? BinaryPrimitives.ReadUInt64BigEndian(icmp[HeaderLength..]) : 0;
        message = new IcmpMessage
        {
            Kind = IcmpMessageKind.EchoReply,
            From = source,
            Identifier = BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]),
            Sequence = BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]),
            Cookie = cookie,
        };
        return true;
    }

    // The quoted payload's first 8 bytes are the echo request's header.
    private static bool TryReadQuotedEcho(IcmpMessage partial, byte echoRequestType, ReadOnlySpan<byte> payload, out IcmpMessage message)
    {
        message = default;
        if (payload.Length < 8 || payload[0] != echoRequestType)
        {
            return false;
        }

        message = partial with
        {
            Identifier = BinaryPrimitives.ReadUInt16BigEndian(payload[4..]),
            Sequence = BinaryPrimitives.ReadUInt16BigEndian(payload[6..]),
        };
        return true;
    }

    private static bool TryReadIPv4Header(ReadOnlySpan<byte> packet, out int headerLength, out byte protocol, out IPAddress source, out IPAddress destination, bool requireWholePacket = true)
    {
        headerLength = 0;
        protocol = 0;
        source = IPAddress.None;
        destination = IPAddress.None;
        if (packet.Length < 20 || packet[0] >> 4 != 4)
        {
            return false;
        }

        headerLength = (packet[0] & 0x0F) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (headerLength < 20 || packet.Length < headerLength || (requireWholePacket && totalLength < headerLength))
        {
            return false;
        }

        protocol = packet[9];
        source = new IPAddress(packet.Slice(12, 4));
        destination = new IPAddress(packet.Slice(16, 4));
        return true;
    }

    private static IcmpUnreachableReason ReasonFromIPv4Code(byte code) => code switch
    {
        Icmp4Constants.ICMP_NET_UNREACH => IcmpUnreachableReason.Network,
        Icmp4Constants.ICMP_HOST_UNREACH => IcmpUnreachableReason.Host,
        Icmp4Constants.ICMP_PROT_UNREACH => IcmpUnreachableReason.Protocol,
        Icmp4Constants.ICMP_PORT_UNREACH => IcmpUnreachableReason.Port,
        Icmp4Constants.ICMP_FRAG_NEEDED => IcmpUnreachableReason.FragmentationNeeded,
        Icmp4Constants.ICMP_NET_ANO or Icmp4Constants.ICMP_HOST_ANO or Icmp4Constants.ICMP_PKT_FILTERED => IcmpUnreachableReason.AdministrativelyProhibited,
        _ => IcmpUnreachableReason.Other,
    };

    private static IcmpUnreachableReason ReasonFromIPv6Code(byte code) => code switch
    {
        Icmp6Constants.ICMPV6_NOROUTE => IcmpUnreachableReason.Network,
        Icmp6Constants.ICMPV6_ADDR_UNREACH => IcmpUnreachableReason.Host,
        Icmp6Constants.ICMPV6_PORT_UNREACH => IcmpUnreachableReason.Port,
        Icmp6Constants.ICMPV6_ADM_PROHIBITED or Icmp6Constants.ICMPV6_POLICY_FAIL or Icmp6Constants.ICMPV6_REJECT_ROUTE => IcmpUnreachableReason.AdministrativelyProhibited,
        _ => IcmpUnreachableReason.Other,
    };
}
