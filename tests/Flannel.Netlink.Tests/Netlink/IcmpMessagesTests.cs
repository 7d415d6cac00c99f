using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Flannel.Netlink.Icmp;

namespace Flannel.Netlink.Tests;

/// <summary>
/// The echo request the probes send and the decoder of what a raw ICMP socket receives. The request bytes are
/// RFC 792's layout with the checksum computed by hand (and the kernel answers them: see IcmpEchoSocketKernelTests);
/// the received datagrams are laid out as the kernel delivers them to a raw socket (IPv4 header first).
/// </summary>
public sealed class IcmpMessagesTests
{
    private static readonly IPAddress Peer = IPAddress.Parse("10.244.2.0");
    private static readonly IPAddress Us = IPAddress.Parse("10.244.1.0");

    [Fact]
    public void Checksum_matches_the_RFC_1071_worked_example()
    {
        // RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (one's complement), so the checksum is 220d.
        Assert.Equal(0x220d, IcmpMessages.Checksum([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]));
    }

    [Fact]
    public void IPv4_echo_request_bytes()
    {
        Span<byte> buffer = stackalloc byte[64];
        int length = IcmpMessages.WriteEchoRequest(buffer, AddressFamily.InterNetwork, identifier: 0x1234, sequence: 1, cookie: 0x0102030405060708);
        byte[] expected =
        [
            0x08, 0x00,             // type 8 ICMP_ECHO, code 0
            0x33, 0x55,             // checksum (RFC 1071 over the 24 bytes)
            0x12, 0x34,             // identifier
            0x00, 0x01,             // sequence
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // cookie, big-endian
            (byte)'f', (byte)'l', (byte)'a', (byte)'n', (byte)'n', (byte)'e', (byte)'l', (byte)'!', // marker
        ];
        Assert.Equal(expected, buffer[..length].ToArray());
        Assert.Equal(0, IcmpMessages.Checksum(buffer[..length])); // a valid checksum sums to zero
    }

    [Fact]
    public void IPv6_echo_request_leaves_the_checksum_to_the_kernel()
    {
        Span<byte> buffer = stackalloc byte[64];
        int length = IcmpMessages.WriteEchoRequest(buffer, AddressFamily.InterNetworkV6, identifier: 0x1234, sequence: 0xfffe, cookie: 7);
        Assert.Equal(24, length);
        Assert.Equal(128, buffer[0]); // ICMPV6_ECHO_REQUEST
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(buffer[2..]));
        Assert.Equal(0xfffe, BinaryPrimitives.ReadUInt16BigEndian(buffer[6..]));
    }

    [Fact]
    public void IPv4_echo_reply_is_decoded_with_its_sender_identifier_sequence_and_cookie()
    {
        byte[] datagram = IPv4(Peer, Us, protocol: 1, EchoMessage(type: 0, identifier: 0x1234, sequence: 9, cookie: 42));
        Assert.True(IcmpMessages.TryReadIPv4(datagram, out IcmpMessage message));
        Assert.Equal(IcmpMessageKind.EchoReply, message.Kind);
        Assert.Equal(Peer, message.From);
        Assert.Equal(0x1234, message.Identifier);
        Assert.Equal(9, message.Sequence);
        Assert.Equal(42UL, message.Cookie);
    }

    [Theory]
    [InlineData(13, IcmpUnreachableReason.AdministrativelyProhibited)] // nft ... reject with icmp admin-prohibited
    [InlineData(10, IcmpUnreachableReason.AdministrativelyProhibited)]
    [InlineData(1, IcmpUnreachableReason.Host)]
    [InlineData(0, IcmpUnreachableReason.Network)]
    [InlineData(3, IcmpUnreachableReason.Port)]
    [InlineData(7, IcmpUnreachableReason.Other)]
    public void IPv4_destination_unreachable_quoting_our_request_names_the_probed_address(byte code, IcmpUnreachableReason reason)
    {
        IPAddress router = IPAddress.Parse("198.18.0.254");
        byte[] quoted = IPv4(Us, Peer, protocol: 1, EchoMessage(type: 8, identifier: 0x1234, sequence: 77, cookie: 1));
        byte[] error = [3, code, 0, 0, 0, 0, 0, 0, .. quoted];
        Assert.True(IcmpMessages.TryReadIPv4(IPv4(router, Us, 1, error), out IcmpMessage message));
        Assert.Equal(IcmpMessageKind.DestinationUnreachable, message.Kind);
        Assert.Equal(reason, message.Reason);
        Assert.Equal(router, message.From);
        Assert.Equal(Peer, message.QuotedDestination);
        Assert.Equal(0x1234, message.Identifier);
        Assert.Equal(77, message.Sequence);
    }

    [Fact]
    public void IPv4_fragmentation_needed_carries_the_next_hop_mtu()
    {
        byte[] quoted = IPv4(Us, Peer, protocol: 1, EchoMessage(type: 8, identifier: 5, sequence: 6, cookie: 1));
        byte[] error = [3, 4, 0, 0, 0, 0, 0x05, 0x78, .. quoted]; // next-hop MTU 1400
        Assert.True(IcmpMessages.TryReadIPv4(IPv4(Peer, Us, 1, error), out IcmpMessage message));
        Assert.Equal(IcmpUnreachableReason.FragmentationNeeded, message.Reason);
        Assert.Equal(1400, message.NextHopMtu);
    }

    [Fact]
    public void IPv4_errors_about_anything_but_an_echo_request_are_not_surfaced()
    {
        byte[] udp = [0x9c, 0x40, 0x21, 0x18, 0, 8, 0, 0]; // a UDP header to port 8472
        byte[] error = [3, 3, 0, 0, 0, 0, 0, 0, .. IPv4(Us, Peer, protocol: 17, udp)];
        Assert.False(IcmpMessages.TryReadIPv4(IPv4(Peer, Us, 1, error), out _));
        Assert.False(IcmpMessages.TryReadIPv4(IPv4(Peer, Us, 1, EchoMessage(type: 8, 1, 1, 1)), out _)); // someone's request
        Assert.False(IcmpMessages.TryReadIPv4(IPv4(Peer, Us, protocol: 6, EchoMessage(0, 1, 1, 1)), out _)); // not ICMP
    }

    [Fact]
    public void IPv6_reply_and_admin_prohibited_error_are_decoded()
    {
        IPAddress peer = IPAddress.Parse("fd00::2");
        IPAddress us = IPAddress.Parse("fd00::1");
        Assert.True(IcmpMessages.TryReadIPv6(EchoMessage(type: 129, identifier: 3, sequence: 4, cookie: 5), peer, out IcmpMessage reply));
        Assert.Equal((IcmpMessageKind.EchoReply, (ushort)3, (ushort)4, 5UL), (reply.Kind, reply.Identifier, reply.Sequence, reply.Cookie));

        byte[] quoted = [.. IPv6Header(us, peer, nextHeader: 58, payloadLength: 24), .. EchoMessage(type: 128, identifier: 3, sequence: 8, cookie: 5)];
        byte[] error = [1, 1, 0, 0, 0, 0, 0, 0, .. quoted];
        Assert.True(IcmpMessages.TryReadIPv6(error, peer, out IcmpMessage message));
        Assert.Equal(IcmpMessageKind.DestinationUnreachable, message.Kind);
        Assert.Equal(IcmpUnreachableReason.AdministrativelyProhibited, message.Reason);
        Assert.Equal(peer, message.QuotedDestination);
        Assert.Equal(8, message.Sequence);

        byte[] tooBig = [2, 0, 0, 0, 0, 0, 0x05, 0x00, .. quoted];
        Assert.True(IcmpMessages.TryReadIPv6(tooBig, peer, out IcmpMessage big));
        Assert.Equal((IcmpMessageKind.PacketTooBig, 1280), (big.Kind, big.NextHopMtu));
    }

    [Fact]
    public void Truncated_and_random_input_is_rejected_without_throwing()
    {
        byte[] quoted = IPv4(Us, Peer, protocol: 1, EchoMessage(type: 8, identifier: 5, sequence: 6, cookie: 1));
        byte[][] valid =
        [
            IPv4(Peer, Us, 1, EchoMessage(0, 1, 2, 3)),
            IPv4(Peer, Us, 1, [3, 13, 0, 0, 0, 0, 0, 0, .. quoted]),
        ];
        foreach (byte[] datagram in valid)
        {
            for (int length = 0; length < datagram.Length; length++)
            {
                // Every prefix either decodes consistently or is rejected; none throws.
                _ = IcmpMessages.TryReadIPv4(datagram.AsSpan(0, length), out _);
                _ = IcmpMessages.TryReadIPv6(datagram.AsSpan(0, length), Peer, out _);
            }
        }

        var random = new Random(1234);
        byte[] noise = new byte[128];
        for (int i = 0; i < 20_000; i++)
        {
            random.NextBytes(noise);
            noise[0] = (byte)((noise[0] & 0x0f) | (i % 2 == 0 ? 0x40 : 0x60));
            int length = random.Next(noise.Length);
            _ = IcmpMessages.TryReadIPv4(noise.AsSpan(0, length), out _);
            _ = IcmpMessages.TryReadIPv6(noise.AsSpan(0, length), Peer, out _);
        }

        byte[] shortHeader = IPv4(Peer, Us, 1, EchoMessage(0, 1, 2, 3));
        shortHeader[0] = 0x44; // IHL 4: a 16-byte header is invalid
        Assert.False(IcmpMessages.TryReadIPv4(shortHeader, out _));
    }

    private static byte[] EchoMessage(byte type, ushort identifier, ushort sequence, ulong cookie)
    {
        byte[] message = new byte[24];
        message[0] = type;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), identifier);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), sequence);
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(8), cookie);
        return message;
    }

    private static byte[] IPv4(IPAddress source, IPAddress destination, byte protocol, byte[] payload)
    {
        byte[] packet = new byte[20 + payload.Length];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[8] = 64;
        packet[9] = protocol;
        source.TryWriteBytes(packet.AsSpan(12, 4), out _);
        destination.TryWriteBytes(packet.AsSpan(16, 4), out _);
        payload.CopyTo(packet.AsSpan(20));
        return packet;
    }

    private static byte[] IPv6Header(IPAddress source, IPAddress destination, byte nextHeader, int payloadLength)
    {
        byte[] header = new byte[40];
        header[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), (ushort)payloadLength);
        header[6] = nextHeader;
        header[7] = 64;
        source.TryWriteBytes(header.AsSpan(8, 16), out _);
        destination.TryWriteBytes(header.AsSpan(24, 16), out _);
        return header;
    }
}
