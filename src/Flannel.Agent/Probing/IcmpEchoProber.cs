using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Flannel.Netlink.Icmp;

namespace Flannel.Agent.Probing;

/// <summary>
/// The real <see cref="IEchoProber"/>: one raw ICMP socket per address family (opened on first use, inside the
/// node's network namespace), a receive loop per socket, and a table of outstanding requests keyed by sequence
/// number. A reply completes its request with the round-trip time; an ICMP error quoting the request completes it
/// as unreachable or prohibited; otherwise the timeout does.
/// </summary>
/// <remarks>
/// Cost matters at thousands of peers, so a request is completed where its answer is found, without a hop through
/// the thread pool: on the receive loop for an answer, and for timeouts by one sweep timer (every
/// <see cref="SweepPeriod"/>, only while requests are outstanding) rather than a timer per request. A timeout is
/// therefore up to one sweep period late.
/// </remarks>
public sealed class IcmpEchoProber : IEchoProber, IDisposable
{
    /// <summary>How often outstanding requests are checked for their timeout.</summary>
    public static readonly TimeSpan SweepPeriod = TimeSpan.FromMilliseconds(100);

    private static readonly TimeSpan ReceiveRetryDelay = TimeSpan.FromMilliseconds(100);
    private ITimer? _sweeper;
    private bool _sweeping;

    private readonly Func<AddressFamily, IEchoChannel> _openChannel;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _disposed = new();
    private Family? _ipv4;
    private Family? _ipv6;
    private bool _isDisposed;

    /// <summary>Creates a prober whose sockets live in <paramref name="networkNamespace"/> (null: this process's).</summary>
    /// <param name="networkNamespace">A namespace name (<c>ip netns add</c>) or path; null for the current namespace.</param>
    /// <param name="timeProvider">Time, for round-trip times and timeouts; the system clock when null.</param>
    public IcmpEchoProber(string? networkNamespace = null, TimeProvider? timeProvider = null)
        : this(family => new SocketChannel(IcmpEchoSocket.Open(family, networkNamespace)), timeProvider ?? TimeProvider.System)
    {
    }

    internal IcmpEchoProber(Func<AddressFamily, IEchoChannel> openChannel, TimeProvider timeProvider)
    {
        _openChannel = openChannel;
        _timeProvider = timeProvider;
    }

    /// <summary>Requests currently waiting for an answer (both families).</summary>
    public int Outstanding => (_ipv4?.Pending.Count ?? 0) + (_ipv6?.Pending.Count ?? 0);

    /// <inheritdoc />
    public async ValueTask<EchoResult> EchoAsync(IPAddress destination, IPAddress? source, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Family family;
        try
        {
            family = GetFamily(destination.AddressFamily);
        }
        catch (SocketException e)
        {
            return new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, $"cannot open a raw ICMP socket: {e.Message} (needs CAP_NET_RAW)");
        }

        long now = _timeProvider.GetTimestamp();
        var pending = new Pending(destination, now, now + (long)(timeout.TotalSeconds * _timeProvider.TimestampFrequency));
        ushort sequence = family.Register(pending);
        try
        {
            try
            {
                if (!family.Channel.TrySendEcho(destination, source, sequence, out IcmpSendError error))
                {
                    return new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, SendFailureDetail(error));
                }
            }
            catch (ObjectDisposedException)
            {
                return new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, "the prober is closed");
            }

            EnsureSweeping();
            using CancellationTokenRegistration onCancel = cancellationToken.Register(static state => ((Pending)state!).Completion.TrySetCanceled(), pending);
            return await pending.Completion.Task.ConfigureAwait(false);
        }
        finally
        {
            family.Pending.TryRemove(new KeyValuePair<ushort, Pending>(sequence, pending));
        }
    }

    /// <summary>Closes the sockets; outstanding requests end as failures.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_isDisposed)
            {
                return;
            }

            _isDisposed = true;
            _disposed.Cancel();
            _sweeper?.Dispose();
            foreach (Family? family in new[] { _ipv4, _ipv6 })
            {
                if (family is null)
                {
                    continue;
                }

                family.Channel.Dispose();
                foreach (Pending pending in family.Pending.Values)
                {
                    pending.Completion.TrySetResult(new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, "the prober is closed"));
                }
            }
        }
    }

    private void EnsureSweeping()
    {
        lock (_lock)
        {
            if (_sweeping || _isDisposed)
            {
                return;
            }

            _sweeping = true;
            _sweeper ??= _timeProvider.CreateTimer(static state => ((IcmpEchoProber)state!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _sweeper.Change(SweepPeriod, SweepPeriod);
        }
    }

    /// <summary>Times out the expired requests; stops the timer when nothing is outstanding.</summary>
    private void Sweep()
    {
        long now = _timeProvider.GetTimestamp();
        List<Pending>? expired = Expired(_ipv6, now, Expired(_ipv4, now, null));

        lock (_lock)
        {
            if (Outstanding == 0 && _sweeping)
            {
                _sweeping = false;
                _sweeper?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        if (expired is not null)
        {
            foreach (Pending pending in expired)
            {
                pending.Completion.TrySetResult(EchoResult.TimedOut);
            }
        }
    }

    private static List<Pending>? Expired(Family? family, long now, List<Pending>? expired)
    {
        if (family is not null)
        {
            // The dictionary's own enumerator: lock-free and no copy, where Values takes every lock and copies.
            foreach (KeyValuePair<ushort, Pending> entry in family.Pending)
            {
                if (entry.Value.Deadline <= now)
                {
                    (expired ??= []).Add(entry.Value);
                }
            }
        }

        return expired;
    }

    private Family GetFamily(AddressFamily addressFamily)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_isDisposed, this);
            ref Family? slot = ref addressFamily == AddressFamily.InterNetworkV6 ? ref _ipv6 : ref _ipv4;
            if (slot is null)
            {
                slot = new Family(_openChannel(addressFamily));
                _ = ReceiveLoopAsync(slot, _disposed.Token);
            }

            return slot;
        }
    }

    private async Task ReceiveLoopAsync(Family family, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            IcmpMessage message;
            try
            {
                message = await family.Channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // A receive error (e.g. ENOBUFS) loses at most the answers in flight: fail those with the reason, go on.
                foreach (Pending waiting in family.Pending.Values)
                {
                    waiting.Completion.TrySetResult(new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, $"receiving failed: {e.Message}"));
                }

                try
                {
                    await Task.Delay(ReceiveRetryDelay, _timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            if (!family.Pending.TryGetValue(message.Sequence, out Pending? pending))
            {
                continue; // late: its request already timed out
            }

            switch (message.Kind)
            {
                case IcmpMessageKind.EchoReply when message.From.Equals(pending.Destination):
                    pending.Completion.TrySetResult(EchoResult.Reply(_timeProvider.GetElapsedTime(pending.SentAt)));
                    break;
                case IcmpMessageKind.EchoReply:
                    break; // same sequence, another sender: not the answer
                default:
                    if (message.QuotedDestination is { } quoted && quoted.Equals(pending.Destination))
                    {
                        pending.Completion.TrySetResult(ErrorResult(message));
                    }

                    break;
            }
        }
    }

    private static EchoResult ErrorResult(IcmpMessage message)
    {
        string from = $" (from {message.From})";
        return message.Kind switch
        {
            IcmpMessageKind.TimeExceeded => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "time exceeded, a routing loop" + from),
            IcmpMessageKind.PacketTooBig => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, $"packet too big, path MTU {message.NextHopMtu}" + from),
            _ => message.Reason switch
            {
                IcmpUnreachableReason.AdministrativelyProhibited => new EchoResult(EchoOutcome.Prohibited, TimeSpan.Zero, "administratively prohibited" + from),
                IcmpUnreachableReason.Network => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "network unreachable" + from),
                IcmpUnreachableReason.Host => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "host unreachable" + from),
                IcmpUnreachableReason.FragmentationNeeded => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, $"fragmentation needed, path MTU {message.NextHopMtu}" + from),
                IcmpUnreachableReason.Protocol => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "protocol unreachable" + from),
                IcmpUnreachableReason.Port => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "port unreachable" + from),
                _ => new EchoResult(EchoOutcome.Unreachable, TimeSpan.Zero, "destination unreachable" + from),
            },
        };
    }

    // Whole constant texts: a peer without a route is refused on every probe, and its result should cost nothing.
    private static string SendFailureDetail(IcmpSendError error) => error.Name switch
    {
        "ENETUNREACH" => "ENETUNREACH: no route to the destination from this source",
        "EHOSTUNREACH" => "EHOSTUNREACH: host unreachable",
        "EINVAL" => "EINVAL: the source address is not local",
        "EADDRNOTAVAIL" => "EADDRNOTAVAIL: the source address is not local",
        "EAGAIN" => "EAGAIN: the socket's send buffer is full",
        "ENOBUFS" => "ENOBUFS: out of buffer space",
        "EPERM" => "EPERM: a local firewall rule refused the request",
        "EACCES" => "EACCES: a local firewall rule refused the request",
        "EMSGSIZE" => "EMSGSIZE: larger than the path MTU",
        string name => $"{name}: the kernel refused to send",
    };

    /// <summary>What the prober needs of a raw ICMP socket (the seam the unit tests fake).</summary>
    internal interface IEchoChannel : IDisposable
    {
        bool TrySendEcho(IPAddress destination, IPAddress? source, ushort sequence, out IcmpSendError error);

        ValueTask<IcmpMessage> ReceiveAsync(CancellationToken cancellationToken);
    }

    private sealed class SocketChannel(IcmpEchoSocket socket) : IEchoChannel
    {
        public bool TrySendEcho(IPAddress destination, IPAddress? source, ushort sequence, out IcmpSendError error) =>
            socket.TrySendEcho(destination, source, sequence, out error);

        public ValueTask<IcmpMessage> ReceiveAsync(CancellationToken cancellationToken) => socket.ReceiveAsync(cancellationToken);

        public void Dispose() => socket.Dispose();
    }

    private sealed class Pending(IPAddress destination, long sentAt, long deadline)
    {
        public IPAddress Destination { get; } = destination;

        public long SentAt { get; } = sentAt;

        public long Deadline { get; } = deadline;

        // Continuations run where the request completes (the receive loop or the sweep): no thread-pool hop per probe.
        public TaskCompletionSource<EchoResult> Completion { get; } = new();
    }

    private sealed class Family(IEchoChannel channel)
    {
        private int _nextSequence = Random.Shared.Next(ushort.MaxValue);

        public IEchoChannel Channel { get; } = channel;

        public ConcurrentDictionary<ushort, Pending> Pending { get; } = new();

        /// <summary>Picks the next free sequence number (16 bits wrap; one still outstanding is skipped).</summary>
        public ushort Register(Pending pending)
        {
            while (true)
            {
                ushort sequence = (ushort)Interlocked.Increment(ref _nextSequence);
                if (Pending.TryAdd(sequence, pending))
                {
                    return sequence;
                }
            }
        }
    }
}
