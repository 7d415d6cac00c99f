using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// The thinnest possible NETLINK_ROUTE socket, for the kernel-floor measurement only: it sends bytes it is
/// given and reports the error replies the kernel queued. It has no sequence matching, no acks and no
/// dump parsing on purpose; Flannel.NET's real socket lives in Flannel.Core.
/// </summary>
internal sealed partial class RawNetlinkSocket : IDisposable
{
    private const int AfNetlink = 16;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int NetlinkRoute = 0;
    private const int SolSocket = 1;
    private const int SoSndbufForce = 32;
    private const int SoRcvbufForce = 33;
    private const int CloneNewNet = 0x40000000;
    private const int MsgDontWait = 0x40;
    private const int Eagain = 11;
    private const int Eintr = 4;
    private const ushort NlmsgError = 2;

    /// <summary>Socket buffers large enough for one send of <see cref="MaxSendBytes"/> and a burst of error replies.</summary>
    private const int BufferBytes = 8 << 20;

    /// <summary>Bytes per sendmsg: the kernel copies one send into one skb, so keep it moderate.</summary>
    public const int MaxSendBytes = 64 << 10;

    private readonly int _fd;
    private readonly byte[] _receiveBuffer = new byte[1 << 20];

    private RawNetlinkSocket(int fd) => _fd = fd;

    /// <summary>
    /// Opens the socket inside the namespace at <paramref name="namespacePath"/>: a socket belongs to the
    /// namespace of the thread that created it, so a dedicated thread enters the namespace, creates the
    /// socket and leaves again (setns only affects the calling thread).
    /// </summary>
    public static RawNetlinkSocket Open(string namespacePath)
    {
        int fd = -1;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                fd = OpenIn(namespacePath);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        return failure is null ? new RawNetlinkSocket(fd) : throw failure;
    }

    private static int OpenIn(string namespacePath)
    {
        int home = Check(open("/proc/thread-self/ns/net", 0x80000 /* O_CLOEXEC */), "open own netns");
        try
        {
            int target = Check(open(namespacePath, 0x80000), "open " + namespacePath);
            try
            {
                Check(setns(target, CloneNewNet), "setns " + namespacePath);
            }
            finally
            {
                close(target);
            }

            int fd;
            try
            {
                fd = Check(socket(AfNetlink, SockRaw | SockCloexec, NetlinkRoute), "socket");
            }
            finally
            {
                // Leave the namespace before anything else can run on this thread.
                Check(setns(home, CloneNewNet), "setns back");
            }

            int size = BufferBytes;
            Check(setsockopt(fd, SolSocket, SoSndbufForce, ref size, sizeof(int)), "SO_SNDBUFFORCE");
            Check(setsockopt(fd, SolSocket, SoRcvbufForce, ref size, sizeof(int)), "SO_RCVBUFFORCE");
            Span<byte> address = stackalloc byte[12]; // sockaddr_nl: family, pad, pid 0 (kernel assigns), groups 0
            address.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(address, AfNetlink);
            Check(bind(fd, ref MemoryMarshal.GetReference(address), address.Length), "bind");
            return fd;
        }
        finally
        {
            close(home);
        }
    }

    /// <summary>
    /// Sends <paramref name="messages"/> (whole netlink messages) in one sendmsg. rtnetlink processes every
    /// message of the send before the call returns, so no wait is needed afterwards.
    /// </summary>
    public void Send(ReadOnlySpan<byte> messages)
    {
        nint sent;
        do
        {
            sent = send(_fd, ref MemoryMarshal.GetReference(messages), messages.Length, 0);
        }
        while (sent < 0 && Marshal.GetLastPInvokeError() == Eintr);

        if (sent < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "netlink send");
        }
    }

    /// <summary>
    /// Reads every reply already queued, without blocking, and counts the NLMSG_ERROR replies: acks (errno 0)
    /// and failures. rtnetlink handles a send synchronously, so after <see cref="Send"/> returns, the replies
    /// to all of its messages are already queued.
    /// </summary>
    public (int Acks, int Errors, int FirstErrno) DrainReplies()
    {
        int acks = 0;
        int errors = 0;
        int firstErrno = 0;
        while (true)
        {
            nint received = recv(_fd, ref _receiveBuffer[0], _receiveBuffer.Length, MsgDontWait);
            if (received < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Eintr)
                {
                    continue;
                }

                return errno == Eagain ? (acks, errors, firstErrno) : throw new Win32Exception(errno, "netlink recv");
            }

            var data = _receiveBuffer.AsSpan(0, (int)received);
            while (data.Length >= 16)
            {
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data);
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(data[4..]);
                if (length < 16 || length > data.Length)
                {
                    break;
                }

                if (type == NlmsgError && length >= 20)
                {
                    int error = -BinaryPrimitives.ReadInt32LittleEndian(data[16..]);
                    if (error == 0)
                    {
                        acks++;
                    }
                    else
                    {
                        errors++;
                        firstErrno = firstErrno == 0 ? error : firstErrno;
                    }
                }

                data = data[Math.Min((length + 3) & ~3, data.Length)..];
            }
        }
    }

    public void Dispose() => close(_fd);

    private static int Check(int result, string what)
        => result >= 0 ? result : throw new Win32Exception(Marshal.GetLastPInvokeError(), what);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, ref int value, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, ref byte address, int length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(int fd, ref byte buffer, nint length, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, ref byte buffer, nint length, int flags);
}
