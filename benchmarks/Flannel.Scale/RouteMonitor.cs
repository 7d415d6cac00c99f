using System.Diagnostics;
using Flannel.Netlink;

namespace Flannel.Scale;

/// <summary>
/// Notes when the N-th route through a device was added, as the kernel announces it (Flannel.Netlink's route
/// notifications), in the namespace it was opened in: the moment of convergence, without polling the kernel while
/// it is programmed.
/// </summary>
/// <remarks>
/// Both sides of the cold start comparison are timed by this monitor, flanneld and <c>ip -batch</c> alike: the kernel
/// builds a notification for every route whether anyone listens or not, but delivering it, and the listener reading it,
/// costs CPU on a two-core machine. <c>ip monitor route</c>, which timed flanneld alone before, formats every
/// notification as text for a reader; with it listening, <c>ip -batch</c> took 11–17% longer (480 against 535–560 ms
/// at 5,000 peers).
/// </remarks>
internal sealed class RouteMonitor : IAsyncDisposable
{
    private readonly RtNetlink _netlink;
    private readonly Stopwatch _clock;
    private readonly string _device;
    private readonly CancellationTokenSource _stop = new();
    private Task _listening = Task.CompletedTask;
    private int _added;
    private long _firstAtTicks = -1;
    private long _reachedAtTicks = -1;
    private int _target = int.MaxValue;
    private volatile string? _failure;

    private RouteMonitor(RtNetlink netlink, Stopwatch clock, string device)
    {
        _netlink = netlink;
        _clock = clock;
        _device = device;
    }

    public int Added => Volatile.Read(ref _added);

    /// <summary>When the first route on the device was added (on the shared clock), or null before.</summary>
    public TimeSpan? FirstAt => Interlocked.Read(ref _firstAtTicks) is >= 0 and long ticks ? TimeSpan.FromTicks(ticks) : null;

    /// <summary>Subscribes in <paramref name="netns"/> (a name under /run/netns), or in this process's namespace when null.</summary>
    public static RouteMonitor Start(Stopwatch clock, string device, string? netns = null)
    {
        var monitor = new RouteMonitor(netns is null ? RtNetlink.Open() : RtNetlink.OpenInNamespace(netns), clock, device);
        // The iterator subscribes before its first wait for a message, that is before MoveNextAsync first returns.
        IAsyncEnumerator<NetlinkNotification> notifications = monitor._netlink.WatchAsync(NetlinkNotificationGroups.Route, monitor._stop.Token).GetAsyncEnumerator(monitor._stop.Token);
        ValueTask<bool> first = notifications.MoveNextAsync();
        monitor._listening = monitor.ListenAsync(notifications, first);
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

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _listening.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _netlink.DisposeAsync();
        _stop.Dispose();
    }

    private async Task ListenAsync(IAsyncEnumerator<NetlinkNotification> notifications, ValueTask<bool> first)
    {
        int deviceIndex = 0;
        try
        {
            for (bool more = await first; more; more = await notifications.MoveNextAsync())
            {
                NetlinkNotification notification = notifications.Current;
                if (notification.Kind == NetlinkNotificationKind.Overrun)
                {
                    _failure = "the kernel dropped route notifications (ENOBUFS): the count would be wrong";
                    return;
                }

                if (notification is not { Kind: NetlinkNotificationKind.RouteAdded, Route: { Gateway: not null, LinkIndex: int link } })
                {
                    continue;
                }

                if (deviceIndex == 0)
                {
                    deviceIndex = (await _netlink.GetLinkAsync(_device, _stop.Token))?.Index ?? 0;
                }

                if (link != deviceIndex)
                {
                    continue;
                }

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
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (NetlinkException ex)
        {
            _failure = ex.Message;
        }
        finally
        {
            await notifications.DisposeAsync();
        }
    }
}
