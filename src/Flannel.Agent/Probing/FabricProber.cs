using System.Net;
using Flannel.Backends;
using System.Net.Sockets;
using Flannel.Agent.Status;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent.Probing;

/// <summary>What this node probes from: its overlay address and its external address, and how a peer's overlay
/// address is found (null when the backend has no overlay device).</summary>
/// <param name="OverlaySource">Our address on the overlay device (vxlan: 10.244.Y.0), or null.</param>
/// <param name="UnderlaySource">Our external interface's address, or null to let the kernel choose.</param>
/// <param name="OverlayAddressOf">A peer lease's overlay address in a family, or null when the backend has no overlay.</param>
/// <param name="OverlayFailureCauses">The backend's likely causes of an overlay-only failure (<see cref="Backends.IOverlayNetwork.OverlayFailureCauses"/>).</param>
internal sealed record ProbeEndpoints(IPAddress? OverlaySource, IPAddress? UnderlaySource, Func<Lease, AddressFamily, IPAddress?>? OverlayAddressOf, string? OverlayFailureCauses = null);

/// <summary>
/// Probes every peer over the overlay and the underlay, one peer at a time, spread evenly over the probe interval
/// (<see cref="ProbePlanner"/>), and keeps each path's state (<see cref="PathHealth"/>).
/// </summary>
/// <remarks>
/// Both paths of a peer are probed together, so the two results describe the same moment. A state change is
/// counted (<c>flannel.peer.transitions</c>) and logged; an overlay failure whose underlay still answers is logged
/// once per episode with its likely causes, since that is the signature of a broken overlay. A flapping path is
/// logged once when it starts flapping. So that one bad event (a switch reboot cutting off 5,000 peers) does not
/// flood the log, at most <see cref="MaxLogsPerMinute"/> state changes are logged per minute and the rest are
/// counted in a summary line.
/// </remarks>
internal sealed partial class FabricProber : IDisposable
{
    /// <summary>State-change log lines per minute before they are summarised.</summary>
    public const int MaxLogsPerMinute = 20;

    /// <summary>
    /// Probes due within this time of each other are sent together. 5,000 peers at the default 60 s interval are due
    /// every 12 ms; a wake-up of the loop each time, and of a thread-pool thread with it, cost more CPU than the
    /// probes. Batched, the loop wakes at most ten times a second and a probe leaves at most this much early.
    /// </summary>
    internal static readonly TimeSpan BatchWindow = TimeSpan.FromMilliseconds(100);

    private readonly string _agentName;
    private readonly FabricProbeOptions _options;
    private readonly IEchoProber _echo;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly FabricMetrics? _metrics;
    private readonly IDisposable? _metricsRegistration;
    private readonly Lock _lock = new();
    private readonly ProbePlanner _planner;
    private readonly Dictionary<string, Peer> _peers = new(StringComparer.Ordinal);
    private ProbeEndpoints _endpoints = new(null, null, null);
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset _logWindowStart;
    private int _logsInWindow;
    private int _suppressedLogs;
    private int _inFlight;
    private long _waits;

    public FabricProber(string agentName, FabricProbeOptions options, IEchoProber echo, TimeProvider timeProvider, ILogger logger, FabricMetrics? metrics)
    {
        _agentName = agentName;
        _options = options;
        _echo = echo;
        _timeProvider = timeProvider;
        _logger = logger;
        _metrics = metrics;
        _planner = new ProbePlanner(options);
        if (options.PerPeerMetrics)
        {
            _metricsRegistration = metrics?.Register(agentName, PerPeerStates);
        }
        else
        {
            _metricsRegistration = metrics?.Register(agentName, States);
        }
    }

    /// <summary>The kernel state of a peer, for the overlay-failure log line (supplied by the agent).</summary>
    public Func<string, PeerKernelStatus>? KernelStatusOf { get; set; }

    /// <summary>Times the run loop has waited for the next due probe or a wake-up (tests count them).</summary>
    internal long Waits => Interlocked.Read(ref _waits);

    /// <summary>Probes in flight now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Peers being probed.</summary>
    public int PeerCount
    {
        get
        {
            lock (_lock)
            {
                return _peers.Count;
            }
        }
    }

    /// <summary>Peers probed per second at the current peer count.</summary>
    public double PeersPerSecond
    {
        get
        {
            lock (_lock)
            {
                return _planner.Count == 0 ? 0 : 1 / _planner.Spacing.TotalSeconds;
            }
        }
    }

    /// <summary>Sets what this node probes from (after the lease is acquired, and again when it changes).</summary>
    public void SetEndpoints(ProbeEndpoints endpoints)
    {
        lock (_lock)
        {
            _endpoints = endpoints;
            foreach (Peer peer in _peers.Values)
            {
                peer.Retarget(endpoints, _options);
            }
        }

        Wake();
    }

    /// <summary>Makes <paramref name="leases"/> the peers to probe (the remote leases, never our own).</summary>
    public void SetPeers(IEnumerable<Lease> leases)
    {
        ArgumentNullException.ThrowIfNull(leases);
        lock (_lock)
        {
            // A snapshot brings every peer at once. A table sized for it holds 5,000 peers in 5,839 slots, where
            // growing by doubling ends at 8,419: about 70 KB per peer table, and the agent has several.
            if (leases.TryGetNonEnumeratedCount(out int count))
            {
                _peers.EnsureCapacity(count);
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (Lease lease in leases)
            {
                string key = lease.Key;
                seen.Add(key);
                if (_peers.TryGetValue(key, out Peer? existing))
                {
                    if (!ReferenceEquals(existing.Lease, lease))
                    {
                        existing.Lease = lease;
                        existing.Retarget(_endpoints, _options);
                    }
                }
                else
                {
                    var peer = new Peer(lease);
                    peer.Retarget(_endpoints, _options);
                    _peers[key] = peer;
                }
            }

            foreach (string gone in _peers.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _peers.Remove(gone);
            }

            _planner.SetPeers(_peers.Keys);
        }

        Wake();
    }

    /// <summary>The probe results of every peer, keyed by lease key.</summary>
    public IReadOnlyDictionary<string, (PathStatus? Overlay, PathStatus? Underlay)> Snapshot()
    {
        lock (_lock)
        {
            DateTimeOffset now = _timeProvider.GetUtcNow();
            var result = new Dictionary<string, (PathStatus?, PathStatus?)>(_peers.Count, StringComparer.Ordinal);
            foreach ((string key, Peer peer) in _peers)
            {
                result[key] = (
                    peer.Overlay is { } overlay ? ToStatus(overlay, now) : null,
                    ToStatus(peer.Underlay, now));
            }

            return result;
        }
    }

    /// <summary>Probes until cancelled. Probes still out when it returns end with the cancellation.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var taken = new List<Peer>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                Task wake;
                DateTimeOffset? due;
                DateTimeOffset now = _timeProvider.GetUtcNow();
                taken.Clear();
                lock (_lock)
                {
                    // Everything due before the next batch goes out now, each probe at its own slot's time (up to
                    // one batch early) or, when late, at now, so the planner's no-catch-up rule still holds.
                    while (_planner.NextDue(now) is { } slot && slot <= now + BatchWindow
                        && _planner.TryTake(slot > now ? slot : now, out string key, out _))
                    {
                        if (_peers.TryGetValue(key, out Peer? peer))
                        {
                            taken.Add(peer);
                        }
                    }

                    due = _planner.NextDue(now);
                    wake = _wake.Task;
                }

                foreach (Peer peer in taken)
                {
                    _ = ProbeAsync(peer, cancellationToken);
                }

                Interlocked.Increment(ref _waits);
                await WaitAsync(due, wake, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    public void Dispose() => _metricsRegistration?.Dispose();

    private async Task WaitAsync(DateTimeOffset? due, Task wake, CancellationToken cancellationToken)
    {
        if (due is not { } at)
        {
            await wake.WaitAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        TimeSpan delay = at - _timeProvider.GetUtcNow();
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        // The system timer counts whole milliseconds and truncates: a wait under 1 ms completes at once and one of
        // 1.9 ms after 1 ms, before the due time either way, so the loop spun through the last fraction of a
        // millisecond before every probe (730,000 waits for 293 probes in 1.5 s). Rounded up, a due probe costs
        // one wait.
        delay = TimeSpan.FromMilliseconds(Math.Ceiling(delay.TotalMilliseconds));

        if (delay < TimeSpan.FromSeconds(1))
        {
            // A short delay abandoned by an early wake-up just expires: cheaper than cancelling it, and delays are
            // short exactly when there are many peers and probes.
            await Task.WhenAny(Task.Delay(delay, _timeProvider, cancellationToken), wake).ConfigureAwait(false);
        }
        else
        {
            // A long one (few peers) is cancelled, so that frequent lease events do not pile up pending timers.
            using var early = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await Task.WhenAny(Task.Delay(delay, _timeProvider, early.Token), wake).ConfigureAwait(false);
            await early.CancelAsync().ConfigureAwait(false);
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    private void Wake()
    {
        TaskCompletionSource previous;
        lock (_lock)
        {
            previous = _wake;
            _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
    }

    private async Task ProbeAsync(Peer peer, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            PathHealth? overlay;
            PathHealth underlay;
            lock (_lock)
            {
                overlay = peer.Overlay;
                underlay = peer.Underlay;
            }

            ValueTask<EchoResult> overlayProbe = overlay is null
                ? ValueTask.FromResult(default(EchoResult))
                : _echo.EchoAsync(overlay.Destination, overlay.Source, _options.Timeout, cancellationToken);
            ValueTask<EchoResult> underlayProbe = underlay.Destination.Equals(IPAddress.None)
                ? ValueTask.FromResult(new EchoResult(EchoOutcome.SendFailed, TimeSpan.Zero, "the lease has no public IP"))
                : _echo.EchoAsync(underlay.Destination, underlay.Source, _options.Timeout, cancellationToken);
            EchoResult overlayResult = await overlayProbe.ConfigureAwait(false);
            EchoResult underlayResult = await underlayProbe.ConfigureAwait(false);
            Record(peer, overlay, overlayResult, underlay, underlayResult);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            // A probe must never take the prober down; the peer is probed again on its next turn.
            LogProbeFailed(_logger, _agentName, peer.Lease.Key, ex);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private void Record(Peer peer, PathHealth? overlay, EchoResult overlayResult, PathHealth underlay, EchoResult underlayResult)
    {
        List<LogEvent>? events = null; // most results change nothing and log nothing
        bool confirmationQueued = false;
        lock (_lock)
        {
            // The peer may have left, or changed address, while the probe was out (a new target is a new path): its
            // result is then void.
            if (!_peers.TryGetValue(peer.Lease.Key, out Peer? current) || !ReferenceEquals(current, peer)
                || !ReferenceEquals(peer.Underlay, underlay) || !ReferenceEquals(peer.Overlay, overlay))
            {
                return;
            }

            DateTimeOffset now = _timeProvider.GetUtcNow();
            if (overlay is not null)
            {
                _metrics?.RecordProbe(_agentName, "overlay", overlayResult);
                if (overlay.Record(overlayResult, now) is { } changed)
                {
                    _metrics?.RecordTransition(_agentName, "overlay", changed.To);
                    (events ??= new(2)).Add(new LogEvent(peer, "overlay", changed, overlay));
                }
            }

            _metrics?.RecordProbe(_agentName, "underlay", underlayResult);
            if (underlay.Record(underlayResult, now) is { } underlayChanged)
            {
                _metrics?.RecordTransition(_agentName, "underlay", underlayChanged.To);
                (events ??= new(2)).Add(new LogEvent(peer, "underlay", underlayChanged, underlay));
            }

            if (peer.Underlay.NeedsConfirmation || peer.Overlay?.NeedsConfirmation == true)
            {
                _planner.Confirm(peer.Lease.Key, now + _options.ConfirmDelay);
                confirmationQueued = true;
            }

            // The overlay-only signature, logged once per episode: the overlay is down while the underlay answers.
            bool overlayOnly = peer.Overlay?.State == Reachability.Unreachable && peer.Underlay.State == Reachability.Reachable;
            if (overlayOnly && !peer.OverlayOnlyLogged)
            {
                peer.OverlayOnlyLogged = true;
                (events ??= new(2)).Add(new LogEvent(peer, "overlay-only", null, overlay));
            }
            else if (!overlayOnly && peer.Overlay?.State != Reachability.Unreachable)
            {
                peer.OverlayOnlyLogged = false;
            }
        }

        if (confirmationQueued)
        {
            Wake(); // the loop may be sleeping until a later regular slot
        }

        if (events is null)
        {
            return;
        }

        foreach (LogEvent e in events)
        {
            Log(e);
        }
    }

    private void Log(LogEvent e)
    {
        DateTimeOffset now = _timeProvider.GetUtcNow();
        int suppressed = 0;
        lock (_lock)
        {
            if (now - _logWindowStart >= TimeSpan.FromMinutes(1))
            {
                suppressed = _suppressedLogs;
                _suppressedLogs = 0;
                _logsInWindow = 0;
                _logWindowStart = now;
            }

            if (_logsInWindow >= MaxLogsPerMinute || (e.Transition is { Flapping: true } t && !IsFirstFlap(e.Peer, e.Path, t)))
            {
                _suppressedLogs++;
                return;
            }

            _logsInWindow++;
        }

        if (suppressed > 0)
        {
            LogSuppressed(_logger, _agentName, suppressed);
        }

        Lease lease = e.Peer.Lease;
        string peerText = $"{lease.Key} (public IP {PublicAddress(lease)})";
        if (e.Path == "overlay-only")
        {
            PeerKernelStatus kernel = KernelStatusOf?.Invoke(lease.Key) ?? PeerKernelStatus.Unknown;
            LogOverlayOnly(_logger, _agentName, peerText, e.Health?.Destination, e.Health?.Source, LikelyCauses(kernel));
            return;
        }

        PathTransition transition = e.Transition!.Value;
        string last = (e.Path == "overlay" ? e.Peer.Overlay?.LastResult : e.Peer.Underlay.LastResult)?.ToString() ?? "no result";
        if (transition.Flapping)
        {
            LogFlapping(_logger, _agentName, peerText, e.Path, _options.FlapWindow, _options.HoldDown);
        }
        else if (transition.To == Reachability.Unreachable)
        {
            LogUnreachable(_logger, _agentName, peerText, e.Path, e.Health?.Destination, last);
        }
        else if (transition.From == Reachability.Unreachable)
        {
            LogRecovered(_logger, _agentName, peerText, e.Path, e.Health?.Destination, last);
        }
    }

    // A flapping path is logged when it starts flapping; its later changes are suppressed until it settles.
    private static bool IsFirstFlap(Peer peer, string path, PathTransition transition)
    {
        ref long sinceTicks = ref path == "overlay" ? ref peer.OverlayFlapLoggedTicks : ref peer.UnderlayFlapLoggedTicks;
        if (sinceTicks != 0 && transition.At.UtcTicks - sinceTicks < TimeSpan.FromMinutes(10).Ticks)
        {
            return false;
        }

        sinceTicks = transition.At.UtcTicks;
        return true;
    }

    private string LikelyCauses(PeerKernelStatus kernel)
    {
        string causes = $"likely causes: {_endpoints.OverlayFailureCauses ?? "the overlay filtered or misconfigured between the nodes"}";
        return kernel.State switch
        {
            PeerKernelState.Missing or PeerKernelState.Drifted => $"kernel state for this peer is {kernel.State.ToString().ToLowerInvariant()} ({kernel.Detail}); {causes}",
            PeerKernelState.Programmed => $"its kernel state here is programmed; {causes} (on the peer's side)",
            _ => causes,
        };
    }

    private static PathStatus ToStatus(PathHealth health, DateTimeOffset now)
    {
        PathStatistics figures = health.Statistics();
        return new PathStatus
        {
            State = health.State,
            Since = health.Since,
            Flapping = health.IsFlapping(now),
            Target = health.Destination.ToString(),
            Source = health.Source?.ToString(),
            Last = health.LastResult?.ToString(),
            LastProbeAt = health.LastProbeAt,
            RttMs = figures.RttAvgMilliseconds is { } avg
                ? new RttStatus(figures.RttLastMilliseconds, figures.RttMinMilliseconds!.Value, avg, figures.RttMaxMilliseconds!.Value)
                : null,
            LossPercent = figures.LossPercent,
            Samples = figures.Samples,
            Sent = health.Sent,
            Received = health.Received,
        };
    }

    private static string PublicAddress(Lease lease) =>
        lease.Attributes.PublicIP is { } v4 && !v4.Equals(IPAddress.Any) ? v4.ToString() : lease.Attributes.PublicIPv6?.ToString() ?? "none";

    private IEnumerable<FabricMetrics.PeerPathState> States()
    {
        List<FabricMetrics.PeerPathState> states;
        lock (_lock)
        {
            states = new List<FabricMetrics.PeerPathState>(_peers.Count * 2);
            foreach (Peer peer in _peers.Values)
            {
                if (peer.Overlay is { } overlay)
                {
                    states.Add(new("overlay", overlay.State, null));
                }

                states.Add(new("underlay", peer.Underlay.State, null));
            }
        }

        return states;
    }

    private IEnumerable<FabricMetrics.PeerPathState> PerPeerStates()
    {
        List<FabricMetrics.PeerPathState> states;
        lock (_lock)
        {
            states = new List<FabricMetrics.PeerPathState>(_peers.Count * 2);
            foreach ((string key, Peer peer) in _peers)
            {
                if (peer.Overlay is { } overlay)
                {
                    states.Add(new("overlay", overlay.State, key));
                }

                states.Add(new("underlay", peer.Underlay.State, key));
            }
        }

        return states;
    }

    [LoggerMessage(EventId = 8000, Level = LogLevel.Warning, Message = "{Agent}: peer {Peer} is unreachable over the {Path} ({Target}): {Last}")]
    private static partial void LogUnreachable(ILogger logger, string agent, string peer, string path, IPAddress? target, string last);

    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "{Agent}: peer {Peer} is reachable again over the {Path} ({Target}): {Last}")]
    private static partial void LogRecovered(ILogger logger, string agent, string peer, string path, IPAddress? target, string last);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "{Agent}: peer {Peer} answers over the underlay but not over the overlay ({Source} -> {Target}): {Causes}")]
    private static partial void LogOverlayOnly(ILogger logger, string agent, string peer, IPAddress? target, IPAddress? source, string causes);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "{Agent}: peer {Peer} is flapping over the {Path} (4+ state changes within {Window}); it must answer for {HoldDown} before it counts as reachable, and further changes are not logged")]
    private static partial void LogFlapping(ILogger logger, string agent, string peer, string path, TimeSpan window, TimeSpan holdDown);

    [LoggerMessage(EventId = 8004, Level = LogLevel.Warning, Message = "{Agent}: {Count} more peer state changes in the last minute were not logged (see flannel.peer.transitions and `flanneld status`)")]
    private static partial void LogSuppressed(ILogger logger, string agent, int count);

    [LoggerMessage(EventId = 8005, Level = LogLevel.Error, Message = "{Agent}: probing peer {Peer} failed")]
    private static partial void LogProbeFailed(ILogger logger, string agent, string peer, Exception exception);

    private readonly record struct LogEvent(Peer Peer, string Path, PathTransition? Transition, PathHealth? Health);

    private sealed class Peer(Lease lease)
    {
        public Lease Lease { get; set; } = lease;

        public PathHealth? Overlay { get; private set; }

        public PathHealth Underlay { get; private set; } = null!;

        public bool OverlayOnlyLogged { get; set; }

        // When a flapping path was last logged, as UTC ticks (0: never): 8 bytes where a DateTimeOffset? takes 24.
        public long OverlayFlapLoggedTicks;

        public long UnderlayFlapLoggedTicks;

        /// <summary>Recomputes the targets; a path whose target changed starts over (its old results describe another address).</summary>
        public void Retarget(ProbeEndpoints endpoints, FabricProbeOptions options)
        {
            LeaseAttributes attributes = Lease.Attributes;
            bool v4 = attributes.PublicIP is { } publicIP && publicIP.AddressFamily == AddressFamily.InterNetwork && !publicIP.Equals(IPAddress.Any);
            IPAddress underlayDestination = v4 ? attributes.PublicIP : attributes.PublicIPv6 ?? IPAddress.None;
            IPAddress? underlaySource = endpoints.UnderlaySource?.AddressFamily == underlayDestination.AddressFamily ? endpoints.UnderlaySource : null;
            if (Underlay is null || !Underlay.Targets(underlayDestination, underlaySource))
            {
                Underlay = new PathHealth(options, underlayDestination, underlaySource);
            }

            if (endpoints.OverlaySource is { } source && endpoints.OverlayAddressOf?.Invoke(Lease, source.AddressFamily) is { } destination)
            {
                if (Overlay is null || !Overlay.Targets(destination, source))
                {
                    Overlay = new PathHealth(options, destination, source);
                    OverlayOnlyLogged = false;
                }
            }
            else if (Overlay is not null)
            {
                Overlay = null;
                OverlayOnlyLogged = false;
            }
        }
    }
}
