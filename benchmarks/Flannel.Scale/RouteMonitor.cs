using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Flannel.Scale;

/// <summary>
/// Notes when the N-th route through a device was added, as the kernel announces it (the RTNLGRP_IPV4_ROUTE
/// multicast group), in the namespace it was opened in: the moment of convergence, without polling the kernel while
/// it is programmed.
/// </summary>
/// <remarks>
/// Both sides of the cold start comparison are timed by this monitor, flanneld and <c>ip -batch</c> alike: the kernel
/// builds a notification for every route whether anyone listens or not, but delivering it, and the listener reading it,
/// costs CPU on a two-core machine. <c>ip monitor route</c>, which timed flanneld alone before, formats every
/// notification as text for a reader; with it listening, <c>ip -batch</c> took 11–17% longer (480 against 535–560 ms
/// at 5,000 peers). This one reads raw messages on its own thread and formats nothing.
/// </remarks>
internal sealed class RouteMonitor : IDisposable
{
    // <linux/rtnetlink.h>, <linux/netlink.h>, <linux/sockios.h>.
    private const int NetlinkRoute = 0;
    private const uint IPv4RouteGroupMask = 1 << (7 - 1); // RTNLGRP_IPV4_ROUTE
    private const ushort NewRoute = 24; // RTM_NEWROUTE
    private const ushort OutputInterface = 4; // RTA_OIF
    private const ushort Gateway = 5; // RTA_GATEWAY
    private const int NetlinkHeaderLength = 16;
    private const int RouteMessageLength = 12;
    private const ulong GetInterfaceIndex = 0x8933; // SIOCGIFINDEX

    private readonly Stopwatch _clock;
    private readonly string _device;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopped;
    private int _added;
    private long _firstAtTicks = -1;
    private long _reachedAtTicks = -1;
    private int _target = int.MaxValue;
    private string? _failure;

    private RouteMonitor(Stopwatch clock, string device, string? netns)
    {
        _clock = clock;
        _device = device;
        _thread = new Thread(() => Listen(netns)) { IsBackground = true, Name = "route monitor" };
    }

    public int Added => Volatile.Read(ref _added);

    /// <summary>When the first route on the device was added (on the shared clock), or null before.</summary>
    public TimeSpan? FirstAt => Interlocked.Read(ref _firstAtTicks) is >= 0 and long ticks ? TimeSpan.FromTicks(ticks) : null;

    /// <summary>Subscribes in <paramref name="netns"/> (a name under /run/netns), or in this process's namespace when null.</summary>
    public static async Task<RouteMonitor> StartAsync(Stopwatch clock, string device, string? netns = null)
    {
        var monitor = new RouteMonitor(clock, device, netns);
        monitor._thread.Start();
        await monitor._subscribed.Task;
        return monitor;
    }

    /// <summary>The time (on the shared clock) the <paramref name="count"/>-th route on the device was added.</summary>
    public async Task<TimeSpan> WaitForAsync(int count, TimeSpan timeout, Func<string> detail)
    {
        Volatile.Write(ref _target, count);
        await Measure.WaitUntilAsync(() => Interlocked.Read(ref _reachedAtTicks) >= 0 || Added >= count || _failure is not null, timeout, $"{count} routes (have {Added})", detail);
        if (_failure is { } failure)
        {
            throw new InvalidOperationException($"route monitor: {failure}");
        }

        long ticks = Interlocked.Read(ref _reachedAtTicks);
        return ticks >= 0 ? TimeSpan.FromTicks(ticks) : _clock.Elapsed;
    }

    public void Dispose()
    {
        _stopped = true;
        _thread.Join();
    }

    private unsafe void Listen(string? netns)
    {
        int fd = -1;
        try
        {
            if (netns is not null)
            {
                // This thread only: it stays in the namespace until it ends.
                int nsFd;
                fixed (byte* path = Encoding.UTF8.GetBytes($"/run/netns/{netns}\0"))
                {
                    nsFd = Check(open(path, O_RDONLY | O_CLOEXEC), "open the namespace");
                }

                int entered = setns(nsFd, CLONE_NEWNET);
                _ = close(nsFd);
                Check(entered, "setns");
            }

            fd = Check(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NetlinkRoute), "socket");
            int size = 64 << 20; // 5,000 notifications never overrun it
            Check(setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(int)), "SO_RCVBUFFORCE");
            long* wait = stackalloc long[] { 0, 50_000 }; // struct timeval: 50 ms, to notice Dispose
            Check(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, wait, 2 * sizeof(long)), "SO_RCVTIMEO");
            // struct sockaddr_nl: family, pad, pid (0: the kernel picks), groups.
            Span<byte> address = stackalloc byte[12];
            address.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(address, (ushort)AF_NETLINK);
            BinaryPrimitives.WriteUInt32LittleEndian(address[8..], IPv4RouteGroupMask);
            fixed (byte* a = address)
            {
                Check(bind(fd, (sockaddr*)a, (uint)address.Length), "bind");
            }

            _subscribed.SetResult();
            byte[] buffer = new byte[1 << 20];
            int deviceIndex = 0;
            while (!_stopped)
            {
                long received;
                fixed (byte* b = buffer)
                {
                    received = recv(fd, b, buffer.Length, 0);
                }

                if (received < 0)
                {
                    int error = errno;
                    if (error == EAGAIN || error == EINTR)
                    {
                        continue;
                    }

                    Check(-1, "recv"); // ENOBUFS: notifications lost, the count would be wrong
                }

                for (ReadOnlySpan<byte> rest = buffer.AsSpan(0, (int)received); rest.Length >= NetlinkHeaderLength;)
                {
                    int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(rest);
                    if (length < NetlinkHeaderLength || length > rest.Length)
                    {
                        break;
                    }

                    if (BinaryPrimitives.ReadUInt16LittleEndian(rest[4..]) == NewRoute
                        && IsGatewayRouteThrough(rest[NetlinkHeaderLength..length], ref deviceIndex, fd))
                    {
                        int added = Interlocked.Increment(ref _added);
                        if (added == 1)
                        {
                            Interlocked.Exchange(ref _firstAtTicks, _clock.Elapsed.Ticks);
                        }

                        if (added == Volatile.Read(ref _target))
                        {
                            Interlocked.Exchange(ref _reachedAtTicks, _clock.Elapsed.Ticks);
                        }
                    }

                    rest = rest[Math.Min(rest.Length, (length + 3) & ~3)..];
                }
            }
        }
        catch (InvalidOperationException ex)
        {
            _failure = ex.Message;
            _subscribed.TrySetException(ex);
        }
        finally
        {
            if (fd >= 0)
            {
                _ = close(fd);
            }
        }
    }

    /// <summary>A route with a gateway whose output interface is the device (its index looked up once it exists).</summary>
    private unsafe bool IsGatewayRouteThrough(ReadOnlySpan<byte> route, ref int deviceIndex, int fd)
    {
        bool gateway = false;
        int outputInterface = 0;
        for (ReadOnlySpan<byte> attributes = route[Math.Min(route.Length, RouteMessageLength)..]; attributes.Length >= 4;)
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(attributes);
            if (length < 4 || length > attributes.Length)
            {
                break;
            }

            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(attributes[2..]);
            if (type == Gateway)
            {
                gateway = true;
            }
            else if (type == OutputInterface && length >= 8)
            {
                outputInterface = BinaryPrimitives.ReadInt32LittleEndian(attributes[4..]);
            }

            attributes = attributes[Math.Min(attributes.Length, (length + 3) & ~3)..];
        }

        if (!gateway || outputInterface == 0)
        {
            return false;
        }

        if (deviceIndex == 0)
        {
            // struct ifreq: the name, then the index. A socket of any family answers SIOCGIFINDEX for its namespace.
            byte* request = stackalloc byte[40];
            new Span<byte>(request, 40).Clear();
            Encoding.ASCII.GetBytes(_device, new Span<byte>(request, 15));
            if (ioctl(fd, GetInterfaceIndex, request) == 0)
            {
                deviceIndex = *(int*)(request + 16);
            }
        }

        return outputInterface == deviceIndex;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int ioctl(int fd, ulong request, void* argument);

    private static int Check(int result, string what) =>
        result >= 0 ? result : throw new InvalidOperationException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
}
