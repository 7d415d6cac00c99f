namespace Flannel.Netlink.Sockets;

/// <summary>
/// The bytes-in, bytes-out seam below <see cref="RtNetlink"/>: one AF_NETLINK/NETLINK_ROUTE socket. The real
/// one is <see cref="LinuxNetlinkSocket"/>; tests script one that asserts requests and returns canned replies.
/// Internal on purpose: the supported public seam is <see cref="INetlink"/>.
/// </summary>
internal interface INetlinkSocket : IDisposable
{
    /// <summary>SO_RCVBUF as the kernel reports it; bounds how many acknowledgements may be outstanding.</summary>
    int ReceiveBufferSize { get; }

    /// <summary>Sends one datagram holding one or more complete netlink messages.</summary>
    void Send(ReadOnlySpan<byte> datagram);

    /// <summary>
    /// Receives one datagram. Throws <see cref="NetlinkOverrunException"/> when the kernel dropped messages
    /// because the receive buffer was full (ENOBUFS).
    /// </summary>
    ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

/// <summary>The kernel dropped messages for this socket (ENOBUFS): the reader must resynchronise.</summary>
internal sealed class NetlinkOverrunException : Exception
{
    public NetlinkOverrunException()
        : base("The netlink receive buffer overflowed (ENOBUFS); messages were lost.")
    {
    }

    public NetlinkOverrunException(string message)
        : base(message)
    {
    }

    public NetlinkOverrunException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
