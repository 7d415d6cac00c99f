using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using Flannel.Netlink;
using Flannel.Netlink.Generic;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;
using Flannel.Netlink.WireGuard;

namespace Flannel.Netlink.Tests;

/// <summary>
/// Generic netlink and the wireguard family. The family lookup and <c>ip link add … type wireguard</c> are
/// captures (wireguard-tools and iproute2 under strace); the WireGuard commands are derived field by field from
/// include/uapi/linux/wireguard.h (the kernel here has no module to capture them from) and every derived vector
/// is also read back by the decoder, so a mistake would have to be made twice, the same way, to pass.
/// </summary>
public sealed class WireGuardMessageTests
{
    private const uint Seq = 0x1234;
    private const ushort FamilyId = 0x1b;
    private static readonly WireGuardKey PrivateKey = Key(0x01);
    private static readonly WireGuardKey PeerKey = Key(0x21);
    private static readonly WireGuardKey Psk = Key(0x41);

    private static WireGuardKey Key(byte first)
    {
        byte[] bytes = new byte[32];
        for (int i = 0; i < 32; i++)
        {
            bytes[i] = (byte)(first + i);
        }

        return new WireGuardKey(bytes);
    }

    private static WireGuardDeviceUpdate FlannelSet() => new()
    {
        Name = "flannel-wg",
        PrivateKey = PrivateKey,
        ListenPort = 51820,
        ReplacePeers = true,
        Peers =
        [
            new WireGuardPeerUpdate
            {
                PublicKey = PeerKey,
                Endpoint = IPEndPoint.Parse("198.18.0.12:51820"),
                PersistentKeepaliveInterval = 25,
                ReplaceAllowedIps = true,
                AllowedIps = [IPNetwork.Parse("10.244.2.0/24")],
            },
        ],
    };

    private static byte[] Encode(Func<ArrayBufferWriter<byte>, int> encode)
    {
        var output = new ArrayBufferWriter<byte>();
        encode(output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] EncodeSet(WireGuardDeviceUpdate update, int maxBytes = WireGuardMessages.DefaultMaxMessageBytes) => Encode(o =>
    {
        var writer = new NetlinkWriter(o);
        int count = WireGuardMessages.WriteSetDevice(ref writer, FamilyId, update, Seq, maxBytes);
        writer.Flush();
        return count;
    });

    private static void AssertGolden(string vector, byte[] actual)
    {
        GoldenVector golden = GoldenVector.Load(vector);
        byte[] expected = golden.WithSequence(Seq);
        Assert.True(expected.AsSpan().SequenceEqual(actual), $"{vector} ({golden.Command}) differs.\nexpected:\n{GoldenVector.Hex(expected)}\nactual:\n{GoldenVector.Hex(actual)}");
    }

    /// <summary>Decodes every message of a buffer with the dump decoder (a set message has the same tree).</summary>
    private static WireGuardDevice Decode(byte[] messages)
    {
        var builder = new WireGuardDeviceBuilder();
        var reader = new NetlinkMessageReader(messages);
        while (reader.TryRead(out NetlinkMessage message))
        {
            Assert.Equal(FamilyId, message.Type);
            builder.Add(message.Payload);
        }

        Assert.Equal(0, reader.Remaining);
        return builder.Build();
    }

    [Fact]
    public void Family_lookup_is_byte_identical_to_wireguard_tools() => AssertGolden("genl-getfamily-wireguard", Encode(o =>
    {
        var writer = new NetlinkWriter(o);
        GenericNetlinkMessages.WriteGetFamily(ref writer, "wireguard", Seq);
        writer.Flush();
        return 1;
    }));

    [Fact]
    public void Wireguard_link_is_byte_identical_to_iproute2() => AssertGolden("link-add-wireguard", Encode(o =>
    {
        var writer = new NetlinkWriter(o);
        LinkMessages.WriteCreate(ref writer, new LinkSpec { Name = "flannel-wg", Kind = LinkKind.WireGuard }, -1, Seq);
        writer.Flush();
        return 1;
    }));

    [Fact]
    public void Set_device_matches_the_vector_derived_from_the_uapi_header()
    {
        byte[] bytes = EncodeSet(FlannelSet());
        AssertGolden("wg-set-device", bytes);

        WireGuardDevice decoded = Decode(bytes);
        Assert.Equal("flannel-wg", decoded.Name);
        Assert.Equal(PrivateKey, decoded.PrivateKey);
        Assert.Equal((ushort)51820, decoded.ListenPort);
        WireGuardPeer peer = Assert.Single(decoded.Peers);
        Assert.Equal(PeerKey, peer.PublicKey);
        Assert.Equal(IPEndPoint.Parse("198.18.0.12:51820"), peer.Endpoint);
        Assert.Equal((ushort)25, peer.PersistentKeepaliveInterval);
        Assert.Equal([IPNetwork.Parse("10.244.2.0/24")], peer.AllowedIps);
        Assert.Null(peer.PresharedKey);
    }

    [Fact]
    public void Set_with_an_ipv6_peer_and_a_preshared_key()
    {
        var update = new WireGuardDeviceUpdate
        {
            Name = "flannel-wg-v6",
            Peers =
            [
                new WireGuardPeerUpdate
                {
                    PublicKey = PeerKey,
                    PresharedKey = Psk,
                    Endpoint = IPEndPoint.Parse("[fd00::12]:51821"),
                    ReplaceAllowedIps = true,
                    AllowedIps = [IPNetwork.Parse("fd00:10:244:2::/64")],
                },
            ],
        };
        byte[] bytes = EncodeSet(update);
        AssertGolden("wg-set-peer-v6", bytes);

        WireGuardPeer peer = Assert.Single(Decode(bytes).Peers);
        Assert.Equal(Psk, peer.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("[fd00::12]:51821"), peer.Endpoint);
        Assert.Equal([IPNetwork.Parse("fd00:10:244:2::/64")], peer.AllowedIps);
    }

    [Fact]
    public void Removing_a_peer_sends_only_its_key_and_the_remove_flag()
    {
        var update = new WireGuardDeviceUpdate
        {
            Name = "flannel-wg",
            Peers = [new WireGuardPeerUpdate { PublicKey = PeerKey, Remove = true, Endpoint = IPEndPoint.Parse("198.18.0.12:1"), AllowedIps = [IPNetwork.Parse("10.0.0.0/8")] }],
        };
        AssertGolden("wg-remove-peer", EncodeSet(update));
    }

    [Fact]
    public void Get_device_is_a_dump_by_name() => AssertGolden("wg-get-device", Encode(o =>
    {
        var writer = new NetlinkWriter(o);
        WireGuardMessages.WriteGetDevice(ref writer, FamilyId, "flannel-wg", Seq);
        writer.Flush();
        return 1;
    }));

    [Fact]
    public void Many_peers_are_split_over_messages_that_each_stay_below_the_budget_and_decode_to_the_same_peers()
    {
        var peers = new List<WireGuardPeerUpdate>();
        for (int i = 0; i < 600; i++)
        {
            byte[] key = new byte[32];
            BinaryPrimitives.WriteInt32LittleEndian(key, i + 1);
            peers.Add(new WireGuardPeerUpdate
            {
                PublicKey = new WireGuardKey(key),
                Endpoint = new IPEndPoint(IPAddress.Parse($"198.18.{i / 250}.{(i % 250) + 1}"), 51820),
                ReplaceAllowedIps = true,
                AllowedIps = [new IPNetwork(IPAddress.Parse($"10.{i / 250}.{i % 250}.0"), 24)],
            });
        }

        byte[] bytes = EncodeSet(new WireGuardDeviceUpdate { Name = "flannel-wg", PrivateKey = PrivateKey, ReplacePeers = true, Peers = peers }, maxBytes: 8 * 1024);

        var reader = new NetlinkMessageReader(bytes);
        int messages = 0;
        var builder = new WireGuardDeviceBuilder();
        while (reader.TryRead(out NetlinkMessage message))
        {
            Assert.Equal(Seq + (uint)messages, message.Sequence);
            Assert.True(message.Payload.Length + 16 <= 8 * 1024, $"message {messages} has {message.Payload.Length + 16} bytes");

            // REPLACE_PEERS and the private key only in the first message, so later ones append.
            bool hasFlags = ContainsTopLevelAttribute(message.Payload, 5);
            Assert.Equal(messages == 0, hasFlags);
            Assert.Equal(messages == 0, ContainsTopLevelAttribute(message.Payload, 3));
            builder.Add(message.Payload);
            messages++;
        }

        Assert.True(messages > 1, "600 peers must not fit one 8 KiB message");
        WireGuardDevice device = builder.Build();
        Assert.Equal(peers.Select(p => p.PublicKey), device.Peers.Select(p => p.PublicKey));
        Assert.Equal(peers.Select(p => p.AllowedIps[0]), device.Peers.Select(p => p.AllowedIps.Single()));
    }

    [Fact]
    public void A_peer_larger_than_one_message_is_refused_with_its_key()
    {
        var update = new WireGuardDeviceUpdate
        {
            Name = "flannel-wg",
            Peers = [new WireGuardPeerUpdate { PublicKey = PeerKey, AllowedIps = Enumerable.Range(0, 100).Select(i => new IPNetwork(IPAddress.Parse($"10.0.{i}.0"), 24)).ToArray() }],
        };
        ArgumentException error = Assert.Throws<ArgumentException>(() => EncodeSet(update, maxBytes: 1024));
        Assert.Contains(PeerKey.ToString(), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dump_replies_coalesce_a_peer_continued_in_the_next_message()
    {
        // What the kernel sends when a peer's allowed IPs overflow a message: the next message repeats the
        // device name and the peer's public key with the rest of its allowed IPs.
        byte[] first = DumpMessage((ref NetlinkWriter w) =>
        {
            w.WriteAttributeUInt32(1, 7);                       // WGDEVICE_A_IFINDEX
            w.WriteAttributeString(2, "flannel-wg");            // WGDEVICE_A_IFNAME
            WriteKeyAttribute(ref w, 3, PrivateKey);            // WGDEVICE_A_PRIVATE_KEY
            WriteKeyAttribute(ref w, 4, Key(0x61));             // WGDEVICE_A_PUBLIC_KEY
            w.WriteAttributeUInt16(6, 51820);                   // WGDEVICE_A_LISTEN_PORT
            NetlinkNestToken peers = w.BeginNested(8, setNestedFlag: true);
            NetlinkNestToken peer = w.BeginNested(0, setNestedFlag: true);
            WriteKeyAttribute(ref w, 1, PeerKey);
            WriteKeyAttribute(ref w, 2, default);               // zero PSK = none
            Span<byte> sockaddr = stackalloc byte[16];
            sockaddr.Clear();
            sockaddr[0] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(sockaddr[2..], 51820);
            IPAddress.Parse("198.18.0.12").TryWriteBytes(sockaddr[4..], out _);
            w.WriteAttribute(4, sockaddr);
            Span<byte> timespec = stackalloc byte[16];
            BinaryPrimitives.WriteInt64LittleEndian(timespec, 1_700_000_000);
            BinaryPrimitives.WriteInt64LittleEndian(timespec[8..], 500_000_000);
            w.WriteAttribute(6, timespec);                      // LAST_HANDSHAKE_TIME
            Span<byte> u64 = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(u64, 1234);
            w.WriteAttribute(7, u64);                           // RX_BYTES
            BinaryPrimitives.WriteUInt64LittleEndian(u64, 5678);
            w.WriteAttribute(8, u64);                           // TX_BYTES
            WriteAllowedIps(ref w, "10.244.2.0/24");
            w.WriteAttributeUInt32(10, 1);                      // PROTOCOL_VERSION
            w.EndNested(peer);
            w.EndNested(peers);
        });
        byte[] second = DumpMessage((ref NetlinkWriter w) =>
        {
            w.WriteAttributeString(2, "flannel-wg");
            NetlinkNestToken peers = w.BeginNested(8, setNestedFlag: true);
            NetlinkNestToken peer = w.BeginNested(0, setNestedFlag: true);
            WriteKeyAttribute(ref w, 1, PeerKey);
            WriteAllowedIps(ref w, "fd00:10:244:2::/64");
            w.EndNested(peer);
            NetlinkNestToken other = w.BeginNested(0, setNestedFlag: true);
            WriteKeyAttribute(ref w, 1, Psk);
            w.EndNested(other);
            w.EndNested(peers);
        });

        var builder = new WireGuardDeviceBuilder();
        builder.Add(first);
        builder.Add(second);
        WireGuardDevice device = builder.Build();

        Assert.Equal(7, device.Index);
        Assert.Equal(Key(0x61), device.PublicKey);
        Assert.Equal(2, device.Peers.Count);
        WireGuardPeer peer0 = device.Peers[0];
        Assert.Null(peer0.PresharedKey);
        Assert.Equal([IPNetwork.Parse("10.244.2.0/24"), IPNetwork.Parse("fd00:10:244:2::/64")], peer0.AllowedIps);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000).AddMilliseconds(500), peer0.LastHandshake);
        Assert.Equal(1234UL, peer0.ReceivedBytes);
        Assert.Equal(5678UL, peer0.TransmittedBytes);
        Assert.Equal(1u, peer0.ProtocolVersion);
        Assert.Equal(Psk, device.Peers[1].PublicKey);
        Assert.Null(device.Peers[1].LastHandshake);
    }

    [Fact]
    public void A_peer_without_a_public_key_in_a_dump_is_malformed()
    {
        byte[] message = DumpMessage((ref NetlinkWriter w) =>
        {
            NetlinkNestToken peers = w.BeginNested(8, setNestedFlag: true);
            NetlinkNestToken peer = w.BeginNested(0, setNestedFlag: true);
            w.WriteAttributeUInt16(5, 25);
            w.EndNested(peer);
            w.EndNested(peers);
        });
        Assert.Throws<NetlinkProtocolException>(() => new WireGuardDeviceBuilder().Add(message));
    }

    [Fact]
    public void Family_reply_is_decoded_with_its_id_and_groups()
    {
        byte[] reply = Encode(o =>
        {
            var w = new NetlinkWriter(o);
            NetlinkMessageToken m = w.BeginMessage(0x10, 0, Seq);
            w.WriteGenlMsgHdr(1, 2);                            // CTRL_CMD_NEWFAMILY
            w.WriteAttributeUInt16(1, 27);                      // CTRL_ATTR_FAMILY_ID
            w.WriteAttributeString(2, "wireguard");             // CTRL_ATTR_FAMILY_NAME
            w.WriteAttributeUInt32(3, 1);                       // CTRL_ATTR_VERSION
            w.WriteAttributeUInt32(4, 0);                       // CTRL_ATTR_HDRSIZE
            w.WriteAttributeUInt32(5, 8);                       // CTRL_ATTR_MAXATTR
            NetlinkNestToken groups = w.BeginNested(7);         // CTRL_ATTR_MCAST_GROUPS
            NetlinkNestToken group = w.BeginNested(1);
            w.WriteAttributeString(1, "events");
            w.WriteAttributeUInt32(2, 9);
            w.EndNested(group);
            w.EndNested(groups);
            w.EndMessage(m);
            w.Flush();
            return 1;
        });
        var reader = new NetlinkMessageReader(reply);
        Assert.True(reader.TryRead(out NetlinkMessage message));
        GenericNetlinkFamily family = GenericNetlinkMessages.DecodeFamily(message.Payload);
        Assert.Equal(new GenericNetlinkFamily("wireguard", 27, 1, 0, 8, family.MulticastGroups), family);
        Assert.Equal(new GenericNetlinkMulticastGroup("events", 9), Assert.Single(family.MulticastGroups));
    }

    [Fact]
    public void Encoding_a_set_allocates_nothing()
    {
        WireGuardDeviceUpdate update = FlannelSet();
        byte[] buffer = new byte[4096];
        var writer = new NetlinkWriter(buffer);
        WireGuardMessages.WriteSetDevice(ref writer, FamilyId, update, Seq); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            writer = new NetlinkWriter(buffer);
            WireGuardMessages.WriteSetDevice(ref writer, FamilyId, update, Seq);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private delegate void AttributeWriter(ref NetlinkWriter writer);

    private static byte[] DumpMessage(AttributeWriter attributes)
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new NetlinkWriter(output);
        NetlinkMessageToken m = w.BeginMessage(FamilyId, 0x02, Seq); // NLM_F_MULTI
        w.WriteGenlMsgHdr(0, 1);
        attributes(ref w);
        w.EndMessage(m);
        w.Flush();
        return output.WrittenSpan[16..].ToArray();
    }

    private static void WriteKeyAttribute(ref NetlinkWriter w, ushort type, WireGuardKey key)
    {
        byte[] bytes = new byte[32];
        key.CopyTo(bytes);
        w.WriteAttribute(type, bytes);
    }

    private static void WriteAllowedIps(ref NetlinkWriter w, string cidr)
    {
        var network = IPNetwork.Parse(cidr);
        NetlinkNestToken ips = w.BeginNested(9, setNestedFlag: true);
        NetlinkNestToken ip = w.BeginNested(0, setNestedFlag: true);
        w.WriteAttributeUInt16(1, (ushort)(network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 10 : 2));
        w.WriteAttributeAddress(2, network.BaseAddress);
        w.WriteAttributeUInt8(3, (byte)network.PrefixLength);
        w.EndNested(ip);
        w.EndNested(ips);
    }

    private static bool ContainsTopLevelAttribute(ReadOnlySpan<byte> payload, ushort type)
    {
        var attributes = new NetlinkAttributeReader(payload[4..]);
        while (attributes.TryRead(out NetlinkAttribute attribute))
        {
            if (attribute.Type == type)
            {
                return true;
            }
        }

        return false;
    }
}
