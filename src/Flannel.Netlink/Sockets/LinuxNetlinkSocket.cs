using System.Net.Sockets;
using Flannel.Netlink.Interop;
using static Tmds.Linux.LibC;

namespace Flannel.Netlink.Sockets;

/// <summary>
/// An AF_NETLINK socket (NETLINK_ROUTE, or NETLINK_GENERIC for genetlink families such as wireguard) opened with Tmds.LibC, optionally inside another network namespace,
/// then wrapped in a <see cref="Socket"/> for cancellable asynchronous reads.
/// </summary>
/// <remarks>
/// Options set at open: NETLINK_EXT_ACK (error text and offset in NLMSG_ERROR), NETLINK_GET_STRICT_CHK (the
/// kernel validates dump requests and honours their filters), NETLINK_CAP_ACK (acknowledgements echo only the
/// request header, so a batch's acks stay small), and a large SO_RCVBUF(FORCE) so a batch's acknowledgements
/// and a notification burst fit.
/// </remarks>
internal sealed class LinuxNetlinkSocket : INetlinkSocket
{
    /// <summary>Receive buffer asked for: room for a few thousand outstanding acks.</summary>
    public const int DefaultReceiveBufferSize = 8 * 1024 * 1024;

    /// <summary>Send buffer asked for: bounds the size of one batched sendmsg.</summary>
    public const int DefaultSendBufferSize = 1024 * 1024;

    private readonly Socket _socket;

    private LinuxNetlinkSocket(int fd, int receiveBufferSize, uint portId)
    {
        _socket = new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
        ReceiveBufferSize = receiveBufferSize;
        PortId = portId;
    }

    /// <inheritdoc />
    public int ReceiveBufferSize { get; }

    /// <summary>The port id the kernel assigned at bind.</summary>
    public uint PortId { get; }

    /// <summary>
    /// Opens a socket in the current namespace, or in <paramref name="namespacePath"/> (entered on a dedicated
    /// thread), joined to the multicast <paramref name="groups"/> (RTNLGRP_* numbers for NETLINK_ROUTE).
    /// <paramref name="protocol"/> is NETLINK_ROUTE unless given (NETLINK_GENERIC for generic netlink).
    /// </summary>
    public static LinuxNetlinkSocket Open(string? namespacePath, ReadOnlySpan<int> groups = default, int protocol = NetlinkHeader.NETLINK_ROUTE)
    {
        int[] groupList = groups.ToArray();
        return namespacePath is null
            ? Create(groupList, protocol)
            : NetworkNamespaceThread.Run(namespacePath, () => Create(groupList, protocol));
    }

    private static unsafe LinuxNetlinkSocket Create(int[] groups, int protocol)
    {
        int fd = socket(AddressFamilies.AF_NETLINK, SocketConstants.SOCK_RAW | SocketConstants.SOCK_CLOEXEC, protocol);
        if (fd < 0)
        {
            ThrowErrno($"socket(AF_NETLINK, SOCK_RAW, {(protocol == NetlinkHeader.NETLINK_ROUTE ? "NETLINK_ROUTE" : protocol.ToString(System.Globalization.CultureInfo.InvariantCulture))})");
        }

        try
        {
            if (SetInt(fd, SocketConstants.SOL_SOCKET, SocketConstants.SO_RCVBUFFORCE, DefaultReceiveBufferSize) != 0)
            {
                // Without CAP_NET_ADMIN the kernel caps the plain option at net.core.rmem_max.
                SetInt(fd, SocketConstants.SOL_SOCKET, SocketConstants.SO_RCVBUF, DefaultReceiveBufferSize);
            }

            if (SetInt(fd, SocketConstants.SOL_SOCKET, SocketConstants.SO_SNDBUFFORCE, DefaultSendBufferSize) != 0)
            {
                SetInt(fd, SocketConstants.SOL_SOCKET, SocketConstants.SO_SNDBUF, DefaultSendBufferSize);
            }

            // Extended acks and strict checking are best effort: kernels before 4.12 / 4.20 lack them.
            SetInt(fd, NetlinkHeader.SOL_NETLINK, NetlinkHeader.NETLINK_EXT_ACK, 1);
            SetInt(fd, NetlinkHeader.SOL_NETLINK, NetlinkHeader.NETLINK_GET_STRICT_CHK, 1);
            SetInt(fd, NetlinkHeader.SOL_NETLINK, NetlinkHeader.NETLINK_CAP_ACK, 1);

            sockaddr_nl local = default;
            local.nl_family = AddressFamilies.AF_NETLINK;
            if (bind(fd, (Tmds.Linux.sockaddr*)&local, (uint)sizeof(sockaddr_nl)) != 0)
            {
                ThrowErrno("bind(AF_NETLINK)");
            }

            foreach (int group in groups)
            {
                if (SetInt(fd, NetlinkHeader.SOL_NETLINK, NetlinkHeader.NETLINK_ADD_MEMBERSHIP, group) != 0)
                {
                    ThrowErrno($"setsockopt(NETLINK_ADD_MEMBERSHIP, {group})");
                }
            }

            sockaddr_nl bound = default;
            Tmds.Linux.socklen_t length = (uint)sizeof(sockaddr_nl);
            if (getsockname(fd, (Tmds.Linux.sockaddr*)&bound, &length) != 0)
            {
                ThrowErrno("getsockname(AF_NETLINK)");
            }

            int receiveBuffer = 0;
            Tmds.Linux.socklen_t optionLength = sizeof(int);
            _ = getsockopt(fd, SocketConstants.SOL_SOCKET, SocketConstants.SO_RCVBUF, &receiveBuffer, &optionLength);
            return new LinuxNetlinkSocket(fd, receiveBuffer, bound.nl_pid);
        }
        catch
        {
            _ = close(fd);
            throw;
        }
    }

    /// <inheritdoc />
    public void Send(ReadOnlySpan<byte> datagram)
    {
        try
        {
            int sent = _socket.Send(datagram);
            if (sent != datagram.Length)
            {
                throw new NetlinkException($"sendmsg(AF_NETLINK) sent {sent} of {datagram.Length} bytes");
            }
        }
        catch (SocketException e)
        {
            throw new NetlinkException($"sendmsg(AF_NETLINK) of {datagram.Length} bytes failed: {Errno.Name(e.ErrorCode)} ({e.ErrorCode}), {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public async ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.NoBufferSpaceAvailable)
        {
            throw new NetlinkOverrunException(e.Message, e);
        }
        catch (SocketException e)
        {
            throw new NetlinkException($"recvmsg(AF_NETLINK) failed: {Errno.Name(e.ErrorCode)} ({e.ErrorCode}), {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _socket.Dispose();

    private static unsafe int SetInt(int fd, int level, int option, int value) => setsockopt(fd, level, option, &value, sizeof(int));

    private static void ThrowErrno(string call)
    {
        int error = errno;
        throw new NetlinkException($"{call} failed: {Errno.Name(error)} ({error}), {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(error)}");
    }
}
