using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Messages;
using Flannel.Netlink.Protocol;

namespace Flannel.Netlink.WireGuard;

/// <summary>
/// The two commands of the <c>wireguard</c> generic netlink family, encoded with no allocation, and the decoder
/// of the device dump.
/// </summary>
/// <remarks>
/// <code>
/// WG_CMD_SET_DEVICE (REQUEST|ACK)               WG_CMD_GET_DEVICE (REQUEST|ACK|DUMP)
/// +---------------------------------------+     +---------------------------------+
/// | struct nlmsghdr  type = family id     |     | struct nlmsghdr                 |
/// | struct genlmsghdr cmd 1, version 1    |     | struct genlmsghdr cmd 0, ver 1  |
/// | WGDEVICE_A_IFNAME "flannel-wg\0"      |     | WGDEVICE_A_IFNAME "flannel-wg\0"|
/// | WGDEVICE_A_PRIVATE_KEY  32 bytes      |     +---------------------------------+
/// | WGDEVICE_A_LISTEN_PORT  u16           |     reply: NLM_F_MULTI messages with the
/// | WGDEVICE_A_FWMARK       u32           |     same attributes plus PUBLIC_KEY and
/// | WGDEVICE_A_FLAGS        u32 (if != 0) |     per peer LAST_HANDSHAKE_TIME, RX/TX_BYTES
/// | WGDEVICE_A_PEERS        nest          |     and PROTOCOL_VERSION, then NLMSG_DONE
/// |   0: nest (one per peer)              |     carrying 0 or -errno.
/// |     WGPEER_A_PUBLIC_KEY    32 bytes   |
/// |     WGPEER_A_PRESHARED_KEY 32 bytes   |
/// |     WGPEER_A_ENDPOINT sockaddr_in(6)  |
/// |     WGPEER_A_PERSISTENT_KEEPALIVE u16 |
/// |     WGPEER_A_FLAGS          u32       |
/// |     WGPEER_A_ALLOWEDIPS    nest       |
/// |       0: nest                         |
/// |         WGALLOWEDIP_A_FAMILY   u16    |
/// |         WGALLOWEDIP_A_IPADDR   4/16   |
/// |         WGALLOWEDIP_A_CIDR_MASK u8    |
/// +---------------------------------------+
/// </code>
/// Attribute order and the NLA_F_NESTED bit on every nest follow wireguard-tools (libmnl's
/// <c>mnl_attr_nest_start</c> sets it), the reference client of this uapi. The kernel module is not available
/// on the build machine, so the golden vectors are derived field by field from <c>include/uapi/linux/wireguard.h</c>
/// and checked against the decoder; only the family lookup that precedes them is a capture.
/// A nest length is a u16, so a set with many peers is split into several messages of at most
/// <see cref="DefaultMaxMessageBytes"/>: the first carries the device attributes and REPLACE_PEERS, the rest only
/// the name and further peers, as the uapi documents.
/// </remarks>
internal static class WireGuardMessages
{
    /// <summary>Bytes per set message before the peers continue in the next one (well below the u16 nest limit).</summary>
    public const int DefaultMaxMessageBytes = 32 * 1024;

    private const int GenlOverhead = NetlinkHeader.NLMSG_HDRLEN + GenericNetlinkConstants.GENL_HDRLEN;

    /// <summary>WG_CMD_GET_DEVICE for the device named <paramref name="name"/> (a dump, as the uapi requires).</summary>
    public static NetlinkMessageToken WriteGetDevice(ref NetlinkWriter writer, ushort familyId, string name, uint sequence)
    {
        ValidateName(name);
        NetlinkMessageToken message = writer.BeginMessage(familyId, NetlinkHeader.NLM_F_REQUEST | NetlinkHeader.NLM_F_ACK | NetlinkHeader.NLM_F_DUMP, sequence);
        writer.WriteGenlMsgHdr(WireGuardConstants.WG_CMD_GET_DEVICE, WireGuardConstants.WG_GENL_VERSION);
        writer.WriteAttributeString(WireGuardConstants.WGDEVICE_A_IFNAME, name);
        writer.EndMessage(message);
        return message;
    }

    /// <summary>
    /// Writes <paramref name="update"/> as one or more WG_CMD_SET_DEVICE messages with sequence numbers
    /// <paramref name="firstSequence"/>, +1, … and returns how many it wrote.
    /// </summary>
    /// <exception cref="ArgumentException">A single peer does not fit in <paramref name="maxMessageBytes"/>.</exception>
    public static int WriteSetDevice(ref NetlinkWriter writer, ushort familyId, WireGuardDeviceUpdate update, uint firstSequence, int maxMessageBytes = DefaultMaxMessageBytes)
    {
        ArgumentNullException.ThrowIfNull(update);
        ValidateName(update.Name);
        IReadOnlyList<WireGuardPeerUpdate> peers = update.Peers;
        int fixedSpace = GenlOverhead + NetlinkAlignment.AttributeSpace(System.Text.Encoding.UTF8.GetByteCount(update.Name) + 1) + NetlinkHeader.NLA_HDRLEN;
        int messages = 0;
        int next = 0;
        do
        {
            NetlinkMessageToken message = writer.BeginMessage(familyId, RequestFlags.Acknowledged, unchecked(firstSequence + (uint)messages));
            writer.WriteGenlMsgHdr(WireGuardConstants.WG_CMD_SET_DEVICE, WireGuardConstants.WG_GENL_VERSION);
            writer.WriteAttributeString(WireGuardConstants.WGDEVICE_A_IFNAME, update.Name);
            int used = fixedSpace;
            if (messages == 0)
            {
                used += WriteDeviceAttributes(ref writer, update);
            }

            if (next < peers.Count)
            {
                NetlinkNestToken peersNest = writer.BeginNested(WireGuardConstants.WGDEVICE_A_PEERS, setNestedFlag: true);
                int inThisMessage = 0;
                while (next < peers.Count)
                {
                    WireGuardPeerUpdate peer = peers[next] ?? throw new ArgumentException($"Peers[{next}] is null.", nameof(update));
                    int space = PeerSpace(peer);
                    if (used + space > maxMessageBytes)
                    {
                        if (inThisMessage == 0)
                        {
                            throw new ArgumentException($"Peer {peer.PublicKey} needs {space} bytes, more than one message of {maxMessageBytes} bytes holds; give it fewer allowed IPs.", nameof(update));
                        }

                        break;
                    }

                    WritePeer(ref writer, peer);
                    used += space;
                    inThisMessage++;
                    next++;
                }

                writer.EndNested(peersNest);
            }

            writer.EndMessage(message);
            messages++;
        }
        while (next < peers.Count);

        return messages;
    }

    private static int WriteDeviceAttributes(ref NetlinkWriter writer, WireGuardDeviceUpdate update)
    {
        int space = 0;
        if (update.PrivateKey is WireGuardKey privateKey)
        {
            WriteKey(ref writer, WireGuardConstants.WGDEVICE_A_PRIVATE_KEY, privateKey);
            space += NetlinkAlignment.AttributeSpace(WireGuardKey.Length);
        }

        if (update.ListenPort is ushort port)
        {
            writer.WriteAttributeUInt16(WireGuardConstants.WGDEVICE_A_LISTEN_PORT, port);
            space += NetlinkAlignment.AttributeSpace(2);
        }

        if (update.FirewallMark is uint mark)
        {
            writer.WriteAttributeUInt32(WireGuardConstants.WGDEVICE_A_FWMARK, mark);
            space += NetlinkAlignment.AttributeSpace(4);
        }

        if (update.ReplacePeers)
        {
            writer.WriteAttributeUInt32(WireGuardConstants.WGDEVICE_A_FLAGS, WireGuardConstants.WGDEVICE_F_REPLACE_PEERS);
            space += NetlinkAlignment.AttributeSpace(4);
        }

        return space;
    }

    private static void WritePeer(ref NetlinkWriter writer, WireGuardPeerUpdate peer)
    {
        NetlinkNestToken nest = writer.BeginNested(0, setNestedFlag: true);
        WriteKey(ref writer, WireGuardConstants.WGPEER_A_PUBLIC_KEY, peer.PublicKey);
        uint flags = PeerFlags(peer);
        if (!peer.Remove)
        {
            if (peer.PresharedKey is WireGuardKey psk)
            {
                WriteKey(ref writer, WireGuardConstants.WGPEER_A_PRESHARED_KEY, psk);
            }

            if (peer.Endpoint is IPEndPoint endpoint)
            {
                WriteEndpoint(ref writer, endpoint);
            }

            if (peer.PersistentKeepaliveInterval is ushort keepalive)
            {
                writer.WriteAttributeUInt16(WireGuardConstants.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, keepalive);
            }
        }

        if (flags != 0)
        {
            writer.WriteAttributeUInt32(WireGuardConstants.WGPEER_A_FLAGS, flags);
        }

        IReadOnlyList<IPNetwork> allowed = peer.AllowedIps;
        if (!peer.Remove && allowed.Count > 0)
        {
            NetlinkNestToken ips = writer.BeginNested(WireGuardConstants.WGPEER_A_ALLOWEDIPS, setNestedFlag: true);
            for (int i = 0; i < allowed.Count; i++)
            {
                IPNetwork network = allowed[i];
                NetlinkNestToken ip = writer.BeginNested(0, setNestedFlag: true);
                writer.WriteAttributeUInt16(WireGuardConstants.WGALLOWEDIP_A_FAMILY, FamilyCodes.Of(network.BaseAddress));
                writer.WriteAttributeAddress(WireGuardConstants.WGALLOWEDIP_A_IPADDR, network.BaseAddress);
                writer.WriteAttributeUInt8(WireGuardConstants.WGALLOWEDIP_A_CIDR_MASK, (byte)network.PrefixLength);
                writer.EndNested(ip);
            }

            writer.EndNested(ips);
        }

        writer.EndNested(nest);
    }

    /// <summary>The bytes <see cref="WritePeer"/> will write for <paramref name="peer"/>, padding included.</summary>
    private static int PeerSpace(WireGuardPeerUpdate peer)
    {
        int space = NetlinkHeader.NLA_HDRLEN + NetlinkAlignment.AttributeSpace(WireGuardKey.Length);
        if (!peer.Remove)
        {
            space += peer.PresharedKey is null ? 0 : NetlinkAlignment.AttributeSpace(WireGuardKey.Length);
            space += peer.Endpoint is null ? 0 : NetlinkAlignment.AttributeSpace(SockaddrLength(peer.Endpoint));
            space += peer.PersistentKeepaliveInterval is null ? 0 : NetlinkAlignment.AttributeSpace(2);
        }

        space += PeerFlags(peer) == 0 ? 0 : NetlinkAlignment.AttributeSpace(4);
        IReadOnlyList<IPNetwork> allowed = peer.AllowedIps;
        if (!peer.Remove && allowed.Count > 0)
        {
            space += NetlinkHeader.NLA_HDRLEN;
            for (int i = 0; i < allowed.Count; i++)
            {
                int addressLength = allowed[i].BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 ? 16 : 4;
                space += NetlinkHeader.NLA_HDRLEN + NetlinkAlignment.AttributeSpace(2) + NetlinkAlignment.AttributeSpace(addressLength) + NetlinkAlignment.AttributeSpace(1);
            }
        }

        return space;
    }

    private static uint PeerFlags(WireGuardPeerUpdate peer)
    {
        if (peer.Remove)
        {
            return WireGuardConstants.WGPEER_F_REMOVE_ME;
        }

        uint flags = 0;
        if (peer.ReplaceAllowedIps)
        {
            flags |= WireGuardConstants.WGPEER_F_REPLACE_ALLOWEDIPS;
        }

        if (peer.UpdateOnly)
        {
            flags |= WireGuardConstants.WGPEER_F_UPDATE_ONLY;
        }

        return flags;
    }

    private static void WriteKey(ref NetlinkWriter writer, ushort type, WireGuardKey key)
    {
        Span<byte> bytes = stackalloc byte[WireGuardKey.Length];
        key.CopyTo(bytes);
        writer.WriteAttribute(type, bytes);
        bytes.Clear();
    }

    /// <summary>
    /// <c>struct sockaddr_in</c> (family host order, port network order, address, 8 zero bytes) or
    /// <c>struct sockaddr_in6</c> (family, port, flowinfo 0, address, scope id).
    /// </summary>
    private static void WriteEndpoint(ref NetlinkWriter writer, IPEndPoint endpoint)
    {
        Span<byte> sockaddr = stackalloc byte[WireGuardConstants.SOCKADDR_IN6_LEN];
        int length = SockaddrLength(endpoint);
        sockaddr = sockaddr[..length];
        sockaddr.Clear();
        bool v6 = length == WireGuardConstants.SOCKADDR_IN6_LEN;
        MemoryMarshal.Write(sockaddr, (ushort)(v6 ? AddressFamilies.AF_INET6 : AddressFamilies.AF_INET));
        BinaryPrimitives.WriteUInt16BigEndian(sockaddr[2..], (ushort)endpoint.Port);
        if (v6)
        {
            endpoint.Address.TryWriteBytes(sockaddr.Slice(8, 16), out _);
            MemoryMarshal.Write(sockaddr[24..], (uint)endpoint.Address.ScopeId);
        }
        else
        {
            endpoint.Address.TryWriteBytes(sockaddr.Slice(4, 4), out _);
        }

        writer.WriteAttribute(WireGuardConstants.WGPEER_A_ENDPOINT, sockaddr);
    }

    private static int SockaddrLength(IPEndPoint endpoint) => endpoint.AddressFamily switch
    {
        AddressFamily.InterNetwork => WireGuardConstants.SOCKADDR_IN_LEN,
        AddressFamily.InterNetworkV6 => WireGuardConstants.SOCKADDR_IN6_LEN,
        _ => throw new ArgumentException($"A WireGuard endpoint is IPv4 or IPv6, not {endpoint.AddressFamily}.", nameof(endpoint)),
    };

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 15 || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid interface name (at most 15 characters, no '/').", nameof(name));
        }
    }
}

/// <summary>
/// Coalesces the messages of a WG_CMD_GET_DEVICE dump into one <see cref="WireGuardDevice"/>. The kernel may
/// continue the peer list in a following message, and a peer's allowed IPs too (the continuation repeats only
/// the peer's public key), so the builder merges a peer into the previous one when their keys match.
/// </summary>
internal sealed class WireGuardDeviceBuilder
{
    private readonly List<PeerBuilder> _peers = [];
    private string? _name;
    private int _index;
    private WireGuardKey? _privateKey;
    private WireGuardKey? _publicKey;
    private ushort _listenPort;
    private uint _firewallMark;

    /// <summary>True once a message has been added.</summary>
    public bool HasData => _name is not null;

    /// <summary>Adds one reply message (its payload after the nlmsghdr).</summary>
    /// <exception cref="NetlinkProtocolException">The message is malformed.</exception>
    public void Add(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < GenericNetlinkConstants.GENL_HDRLEN)
        {
            ThrowHelper.ThrowHeaderTooShort("struct genlmsghdr", payload.Length, GenericNetlinkConstants.GENL_HDRLEN);
        }

        var attributes = new NetlinkAttributeReader(payload[GenericNetlinkConstants.GENL_HDRLEN..]);
        while (attributes.TryRead(out NetlinkAttribute attribute))
        {
            switch (attribute.Type)
            {
                case WireGuardConstants.WGDEVICE_A_IFINDEX:
                    _index = (int)attribute.GetUInt32();
                    break;
                case WireGuardConstants.WGDEVICE_A_IFNAME:
                    _name = attribute.GetString();
                    break;
                case WireGuardConstants.WGDEVICE_A_PRIVATE_KEY:
                    _privateKey = NonZero(ReadKey(attribute));
                    break;
                case WireGuardConstants.WGDEVICE_A_PUBLIC_KEY:
                    _publicKey = NonZero(ReadKey(attribute));
                    break;
                case WireGuardConstants.WGDEVICE_A_LISTEN_PORT:
                    _listenPort = attribute.GetUInt16();
                    break;
                case WireGuardConstants.WGDEVICE_A_FWMARK:
                    _firewallMark = attribute.GetUInt32();
                    break;
                case WireGuardConstants.WGDEVICE_A_PEERS:
                    AddPeers(attribute.Nested);
                    break;
            }
        }

        _name ??= string.Empty;
    }

    /// <summary>The device collected so far.</summary>
    public WireGuardDevice Build() => new()
    {
        Name = _name ?? string.Empty,
        Index = _index,
        PrivateKey = _privateKey,
        PublicKey = _publicKey,
        ListenPort = _listenPort,
        FirewallMark = _firewallMark,
        Peers = _peers.ConvertAll(static p => p.Build()),
    };

    private void AddPeers(NetlinkAttributeReader peers)
    {
        while (peers.TryRead(out NetlinkAttribute peerAttribute))
        {
            var peer = new PeerBuilder();
            NetlinkAttributeReader fields = peerAttribute.Nested;
            while (fields.TryRead(out NetlinkAttribute field))
            {
                switch (field.Type)
                {
                    case WireGuardConstants.WGPEER_A_PUBLIC_KEY:
                        peer.PublicKey = ReadKey(field);
                        break;
                    case WireGuardConstants.WGPEER_A_PRESHARED_KEY:
                        peer.PresharedKey = NonZero(ReadKey(field));
                        break;
                    case WireGuardConstants.WGPEER_A_ENDPOINT:
                        peer.Endpoint = ReadEndpoint(field.Payload);
                        break;
                    case WireGuardConstants.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
                        peer.Keepalive = field.GetUInt16();
                        break;
                    case WireGuardConstants.WGPEER_A_LAST_HANDSHAKE_TIME:
                        peer.LastHandshake = ReadTimespec(field.Payload);
                        break;
                    case WireGuardConstants.WGPEER_A_RX_BYTES:
                        peer.ReceivedBytes = field.GetUInt64();
                        break;
                    case WireGuardConstants.WGPEER_A_TX_BYTES:
                        peer.TransmittedBytes = field.GetUInt64();
                        break;
                    case WireGuardConstants.WGPEER_A_PROTOCOL_VERSION:
                        peer.ProtocolVersion = field.GetUInt32();
                        break;
                    case WireGuardConstants.WGPEER_A_ALLOWEDIPS:
                        AddAllowedIps(field.Nested, peer.AllowedIps);
                        break;
                }
            }

            if (peer.PublicKey is not WireGuardKey key)
            {
                ThrowHelper.ThrowMalformed("a WireGuard peer in the dump has no WGPEER_A_PUBLIC_KEY");
                return;
            }

            if (_peers.Count > 0 && _peers[^1].PublicKey == key)
            {
                _peers[^1].AllowedIps.AddRange(peer.AllowedIps); // a continuation of the previous peer
            }
            else
            {
                _peers.Add(peer);
            }
        }
    }

    private static void AddAllowedIps(NetlinkAttributeReader ips, List<IPNetwork> into)
    {
        while (ips.TryRead(out NetlinkAttribute ipAttribute))
        {
            IPAddress? address = null;
            int? prefix = null;
            NetlinkAttributeReader fields = ipAttribute.Nested;
            while (fields.TryRead(out NetlinkAttribute field))
            {
                switch (field.Type)
                {
                    case WireGuardConstants.WGALLOWEDIP_A_IPADDR:
                        address = field.GetAddress();
                        break;
                    case WireGuardConstants.WGALLOWEDIP_A_CIDR_MASK:
                        prefix = field.GetUInt8();
                        break;
                }
            }

            if (address is null || prefix is not int length)
            {
                ThrowHelper.ThrowMalformed("a WireGuard allowed IP lacks WGALLOWEDIP_A_IPADDR or WGALLOWEDIP_A_CIDR_MASK");
                return;
            }

            into.Add(FamilyCodes.Network(address, length));
        }
    }

    private static WireGuardKey ReadKey(NetlinkAttribute attribute)
    {
        if (attribute.Payload.Length != WireGuardKey.Length)
        {
            ThrowHelper.ThrowAttributeSize(attribute.Type, attribute.Payload.Length, WireGuardKey.Length);
        }

        return new WireGuardKey(attribute.Payload);
    }

    private static WireGuardKey? NonZero(WireGuardKey key) => key.IsZero ? null : key;

    private static IPEndPoint? ReadEndpoint(ReadOnlySpan<byte> sockaddr)
    {
        if (sockaddr.Length < 2)
        {
            return ThrowHelper.ThrowMalformed<IPEndPoint?>("WGPEER_A_ENDPOINT is shorter than a sockaddr family");
        }

        ushort family = MemoryMarshal.Read<ushort>(sockaddr);
        if (family == AddressFamilies.AF_INET && sockaddr.Length >= WireGuardConstants.SOCKADDR_IN_LEN)
        {
            return new IPEndPoint(new IPAddress(sockaddr.Slice(4, 4)), BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]));
        }

        if (family == AddressFamilies.AF_INET6 && sockaddr.Length >= WireGuardConstants.SOCKADDR_IN6_LEN)
        {
            var address = new IPAddress(sockaddr.Slice(8, 16), MemoryMarshal.Read<uint>(sockaddr[24..]));
            return new IPEndPoint(address, BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]));
        }

        return family == AddressFamilies.AF_UNSPEC
            ? null
            : ThrowHelper.ThrowMalformed<IPEndPoint?>($"WGPEER_A_ENDPOINT has family {family} and {sockaddr.Length} bytes");
    }

    private static DateTimeOffset? ReadTimespec(ReadOnlySpan<byte> timespec)
    {
        if (timespec.Length != WireGuardConstants.KERNEL_TIMESPEC_LEN)
        {
            return ThrowHelper.ThrowMalformed<DateTimeOffset?>($"WGPEER_A_LAST_HANDSHAKE_TIME has {timespec.Length} bytes, not 16");
        }

        long seconds = MemoryMarshal.Read<long>(timespec);
        long nanoseconds = MemoryMarshal.Read<long>(timespec[8..]);
        if (seconds == 0 && nanoseconds == 0)
        {
            return null;
        }

        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanoseconds / 100);
    }

    private sealed class PeerBuilder
    {
        public WireGuardKey? PublicKey { get; set; }

        public WireGuardKey? PresharedKey { get; set; }

        public IPEndPoint? Endpoint { get; set; }

        public ushort Keepalive { get; set; }

        public DateTimeOffset? LastHandshake { get; set; }

        public ulong ReceivedBytes { get; set; }

        public ulong TransmittedBytes { get; set; }

        public uint ProtocolVersion { get; set; }

        public List<IPNetwork> AllowedIps { get; } = [];

        public WireGuardPeer Build() => new()
        {
            PublicKey = PublicKey!.Value,
            PresharedKey = PresharedKey,
            Endpoint = Endpoint,
            PersistentKeepaliveInterval = Keepalive,
            LastHandshake = LastHandshake,
            ReceivedBytes = ReceivedBytes,
            TransmittedBytes = TransmittedBytes,
            AllowedIps = AllowedIps,
            ProtocolVersion = ProtocolVersion,
        };
    }
}
