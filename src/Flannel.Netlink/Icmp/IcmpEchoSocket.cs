using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Flannel.Netlink.Interop;
using Flannel.Netlink.Sockets;
using static Tmds.Linux.LibC;

namespace Flannel.Netlink.Icmp;

/// <summary>
/// One raw ICMP socket (IPv4 or IPv6) that sends echo requests from a chosen source address and receives the
/// replies and errors about them. Probing thousands of peers needs one of these per address family, never a
/// process or a socket per probe. Needs CAP_NET_RAW.
/// </summary>
/// <remarks>
/// <para>
/// Each socket picks a random echo identifier and a random 64-bit cookie carried in the payload. Every raw ICMP
/// socket in a namespace receives a copy of every ICMP message, so <see cref="ReceiveAsync"/> surfaces only echo
/// replies carrying this socket's identifier and cookie, and errors quoting an echo request with its identifier.
/// A kernel filter (ICMP_FILTER / ICMPV6_FILTER) drops every other ICMP type before it is queued to the socket.
/// </para>
/// <para>
/// The source address is chosen per request with an IP_PKTINFO / IPV6_PKTINFO control message, so one socket
/// probes both over the overlay (from the flannel device's address) and over the underlay (from the external
/// interface's address). The kernel rejects a source that is not a local address (EINVAL).
/// </para>
/// </remarks>
public sealed class IcmpEchoSocket : IDisposable
{
    // Replies to our requests are small; errors quote at most 576 (IPv4) or 1280 (IPv6) bytes. A longer datagram
    // (a reply to someone else's large ping) is truncated, which is harmless: it is not ours.
    private const int ReceiveBufferLength = 2048;

    private readonly Socket _socket;
    private readonly byte[] _receiveBuffer = new byte[ReceiveBufferLength];

    private IcmpEchoSocket(Socket socket, AddressFamily family)
    {
        _socket = socket;
        AddressFamily = family;
        Identifier = (ushort)Random.Shared.Next(1, ushort.MaxValue);
        Cookie = (ulong)Random.Shared.NextInt64();
    }

    /// <summary>The socket's address family.</summary>
    public AddressFamily AddressFamily { get; }

    /// <summary>The echo identifier of this socket's requests.</summary>
    public ushort Identifier { get; }

    /// <summary>The cookie this socket's requests carry; a reply must echo it.</summary>
    public ulong Cookie { get; }

    /// <summary>
    /// Opens a raw ICMP socket of <paramref name="family"/> in this process's network namespace, or inside
    /// <paramref name="networkNamespace"/> (a name created by <c>ip netns add</c>, or a namespace file path),
    /// entered on a dedicated thread only while the socket is created.
    /// </summary>
    /// <exception cref="SocketException">The socket cannot be created (without CAP_NET_RAW: access denied).</exception>
    public static IcmpEchoSocket Open(AddressFamily family, string? networkNamespace = null)
    {
        if (family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentOutOfRangeException(nameof(family), family, "An ICMP echo socket is IPv4 or IPv6.");
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Raw ICMP sockets with per-request source addresses need Linux.");
        }

        Socket socket = networkNamespace is null
            ? Create(family)
            : NetworkNamespaceThread.Run(NetworkNamespaceThread.ResolvePath(networkNamespace), () => Create(family));
        return new IcmpEchoSocket(socket, family);
    }

    /// <summary>
    /// Sends an echo request to <paramref name="destination"/> from <paramref name="source"/> (a local address; null
    /// lets the kernel choose), numbered <paramref name="sequence"/>. Does not block.
    /// </summary>
    /// <returns>False when the kernel refused the request (no route, a non-local source, a full send buffer, …);
    /// <paramref name="error"/> then names the errno.</returns>
    /// <remarks>A refusal is a result, not an exception: a prober meets it for every probe of a peer that has no
    /// route, and at thousands of peers a throw per probe cost more CPU than the probing itself.</remarks>
    public unsafe bool TrySendEcho(IPAddress destination, IPAddress? source, ushort sequence, out IcmpSendError error)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(_socket.SafeHandle.IsClosed, this);
        if (destination.AddressFamily != AddressFamily || (source is not null && source.AddressFamily != AddressFamily))
        {
            throw new ArgumentException($"An {AddressFamily} echo socket cannot send from {source} to {destination}.", nameof(destination));
        }

        Span<byte> packet = stackalloc byte[IcmpMessages.EchoRequestLength];
        IcmpMessages.WriteEchoRequest(packet, AddressFamily, Identifier, sequence, Cookie);

        Span<byte> name = stackalloc byte[RawSocketLayout.SizeOfSockaddrIn6];
        name.Clear();
        int nameLength = WriteSockaddr(name, destination);

        // One control message: IP_PKTINFO { ifindex 0, spec_dst = source } or IPV6_PKTINFO { addr = source, ifindex 0 }.
        int dataLength = AddressFamily == AddressFamily.InterNetwork ? RawSocketLayout.SizeOfInPktinfo : RawSocketLayout.SizeOfIn6Pktinfo;
        int controlLength = source is null ? 0 : (int)CMSG_SPACE(dataLength);
        Span<byte> control = stackalloc byte[64];
        control.Clear();

        fixed (byte* packetBytes = packet)
        fixed (byte* nameBytes = name)
        fixed (byte* controlBytes = control)
        {
            var iov = new Tmds.Linux.iovec { iov_base = packetBytes, iov_len = packet.Length };
            var message = new Tmds.Linux.msghdr
            {
                msg_name = nameBytes,
                msg_namelen = nameLength,
                msg_iov = &iov,
                msg_iovlen = 1,
                msg_control = controlLength == 0 ? null : controlBytes,
                msg_controllen = controlLength,
            };
            if (source is not null)
            {
                Tmds.Linux.cmsghdr* header = CMSG_FIRSTHDR(&message);
                header->cmsg_len = (int)CMSG_ALIGN(sizeof(Tmds.Linux.cmsghdr)) + dataLength;
                var data = new Span<byte>(CMSG_DATA(header), dataLength);
                if (AddressFamily == AddressFamily.InterNetwork)
                {
                    header->cmsg_level = SOL_IP;
                    header->cmsg_type = IP_PKTINFO;
                    source.TryWriteBytes(data.Slice(4, 4), out _); // ipi_spec_dst
                }
                else
                {
                    header->cmsg_level = SOL_IPV6;
                    header->cmsg_type = IPV6_PKTINFO;
                    source.TryWriteBytes(data[..16], out _); // ipi6_addr
                }
            }

            long sent = sendmsg((int)_socket.Handle, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
            error = sent < 0 ? new IcmpSendError(errno) : default;
            return sent >= 0;
        }
    }

    /// <summary>
    /// Waits for the next ICMP message about this socket's echo requests: a reply with its identifier and cookie,
    /// or an error quoting one of its requests. Anything else that arrives is skipped. One reader at a time.
    /// </summary>
    public async ValueTask<IcmpMessage> ReceiveAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            IcmpMessage message;
            bool decoded;
            try
            {
                if (AddressFamily == AddressFamily.InterNetwork)
                {
                    int length = await _socket.ReceiveAsync(_receiveBuffer.AsMemory(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    decoded = IcmpMessages.TryReadIPv4(_receiveBuffer.AsSpan(0, length), out message);
                }
                else
                {
                    SocketReceiveFromResult result = await _socket.ReceiveFromAsync(
                        _receiveBuffer.AsMemory(), SocketFlags.None, new IPEndPoint(IPAddress.IPv6Any, 0), cancellationToken).ConfigureAwait(false);
                    decoded = IcmpMessages.TryReadIPv6(_receiveBuffer.AsSpan(0, result.ReceivedBytes), ((IPEndPoint)result.RemoteEndPoint).Address, out message);
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
            {
                continue; // a truncated datagram larger than any message about our requests
            }

            if (decoded && message.Identifier == Identifier && (message.Kind != IcmpMessageKind.EchoReply || message.Cookie == Cookie))
            {
                return message;
            }
        }
    }

    /// <summary>Closes the socket; a pending <see cref="ReceiveAsync"/> ends with an exception.</summary>
    public void Dispose() => _socket.Dispose();

    private static Socket Create(AddressFamily family)
    {
        var socket = family == AddressFamily.InterNetwork
            ? new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp)
            : new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.IcmpV6);
        try
        {
            if (family == AddressFamily.InterNetwork)
            {
                // struct icmp_filter { __u32 data; }: bit N set drops type N.
                uint pass = (1u << Icmp4Constants.ICMP_ECHOREPLY) | (1u << Icmp4Constants.ICMP_DEST_UNREACH) | (1u << Icmp4Constants.ICMP_TIME_EXCEEDED);
                Span<byte> filter = stackalloc byte[4];
                MemoryMarshal.Write(filter, ~pass);
                socket.SetRawSocketOption(SOL_RAW, Icmp4Constants.ICMP_FILTER, filter);
            }
            else
            {
                // struct icmp6_filter { __u32 data[8]; }: bit (type & 31) of word (type >> 5) set drops the type.
                Span<uint> words = stackalloc uint[8];
                words.Fill(uint.MaxValue);
                foreach (byte type in (ReadOnlySpan<byte>)[Icmp6Constants.ICMPV6_ECHO_REPLY, Icmp6Constants.ICMPV6_DEST_UNREACH, Icmp6Constants.ICMPV6_TIME_EXCEED, Icmp6Constants.ICMPV6_PKT_TOOBIG])
                {
                    words[type >> 5] &= ~(1u << (type & 31));
                }

                socket.SetRawSocketOption(SOL_ICMPV6, Icmp6Constants.ICMPV6_FILTER, MemoryMarshal.AsBytes(words));

                // Binding to the unspecified address restricts nothing; .NET needs it to report each sender (recvfrom).
                socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
            }

            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // struct sockaddr_in { sa_family_t sin_family; in_port_t sin_port; struct in_addr sin_addr; char zero[8]; }
    // struct sockaddr_in6 { sa_family_t; in_port_t; uint32_t sin6_flowinfo; struct in6_addr; uint32_t sin6_scope_id; }
    private static int WriteSockaddr(Span<byte> name, IPAddress destination)
    {
        if (destination.AddressFamily == AddressFamily.InterNetwork)
        {
            MemoryMarshal.Write(name, RawSocketLayout.AF_INET);
            destination.TryWriteBytes(name.Slice(4, 4), out _);
            return RawSocketLayout.SizeOfSockaddrIn;
        }

        MemoryMarshal.Write(name, RawSocketLayout.AF_INET6);
        destination.TryWriteBytes(name.Slice(8, 16), out _);
        MemoryMarshal.Write(name[24..], (uint)destination.ScopeId);
        return RawSocketLayout.SizeOfSockaddrIn6;
    }
}

/// <summary>Why the kernel refused to send an echo request: an errno.</summary>
/// <param name="Number">The errno (e.g. 101).</param>
public readonly record struct IcmpSendError(int Number)
{
    /// <summary>The errno's symbolic name (e.g. <c>ENETUNREACH</c>).</summary>
    public string Name => Errno.Name(Number);

    /// <summary>The name, the number and the C library's text, e.g. <c>ENETUNREACH (101), Network is unreachable</c>.</summary>
    public override string ToString() => $"{Name} ({Number}), {Marshal.GetPInvokeErrorMessage(Number)}";
}
