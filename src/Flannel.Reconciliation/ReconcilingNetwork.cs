using System.Diagnostics;
using System.Threading.Channels;
using Flannel.Backends;
using Flannel.Netlink;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Reconciliation;

// Design note: flannel programs a peer when its lease event arrives and then forgets about it (vxlan), or
// re-adds missing routes every 10 s (host-gw). Here every backend keeps a desired-state model: one entry per
// remote lease, with the kernel objects that lease needs. Two paths keep the kernel equal to it:
//  - the event path: a batch of lease events is diffed against what was last programmed for those peers only,
//    and the difference is sent as one netlink batch (no dump), which keeps event -> route latency low;
//  - the reconcile path: at startup (after the first snapshot), on every resync tick, after a netlink error
//    and when a notification says the kernel changed under us, the backend dumps the objects it owns, diffs
//    them against the whole model, and sends one batch that adds what is missing, fixes what differs and
//    deletes what no peer wants (garbage left by peers that vanished while the agent was down included).
// A peer whose object the kernel refuses is withdrawn (its other objects deleted, as flannel rolls back) and
// retried with backoff; the other peers of the batch are unaffected, because every operation in a netlink
// batch succeeds or fails on its own. One loop owns the model, so no locks are needed around it.

/// <summary>
/// The public reconciliation engine every backend builds on: the desired-state model (one entry per remote lease),
/// the event and reconcile paths, resync ticks, retry backoff, per-peer withdraw and the notification watch.
/// </summary>
/// <remarks>
/// A backend says what one lease needs (<see cref="BuildDesiredAsync"/>) and what it owns now
/// (<see cref="DumpOwnedAsync"/>). <see cref="KernelObject"/>s are applied through <see cref="Netlink"/> as one
/// batch; objects of a backend-defined <see cref="StateObjectKind"/> through the <see cref="IStateApplier"/> the
/// backend returns from <see cref="GetApplier"/>.
/// </remarks>
public abstract partial class ReconcilingNetwork : INetwork, IPeerKernelStateSource
{
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_maxWatchBackoff = TimeSpan.FromSeconds(30);

    // A refused peer is retried after 1 s, 2 s, 4 s ... up to 2 min (±20 % jitter, so peers refused together do not
    // retry together): at most 7 attempts in its first minute, then one every 2 min. The same warning about one peer
    // is logged at most once per 5 min, with the number suppressed meanwhile.
    private static readonly TimeSpan s_peerRetryFirst = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_peerRetryMax = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan s_peerWarningInterval = TimeSpan.FromMinutes(5);

    // Backpressure: lease events are processed inline. The pump hands the loop one batch and asks the agent for the
    // next only when the pass that programmed it has finished, so the agent reads its store watch at the kernel's
    // pace (nothing queues without bound) and its flannel.lease_events.apply_duration is the time one batch took to
    // be programmed, a resync pass it waited for included. Timer and notification items still coalesce into a pass.
    private const int MaxQueuedEventBatches = 1;

    // How long a route deletion of our own waits for its RTM_DELROUTE echo; only that echo is ignored.
    private static readonly TimeSpan s_ownDeletionWindow = TimeSpan.FromSeconds(30);

    /// <summary>The AppContext switch that turns <see cref="CollectAfterLargePass"/> off (set it to false).</summary>
    internal const string CollectGarbageSwitch = "Flannel.Reconciliation.CollectAfterLargePasses";

    /// <summary>Below this many peers a pass leaves too little garbage (a few MB at most) to be worth a full collection.</summary>
    internal const int CollectGarbageMinPeers = 256;

    // The reason of the timer's full pass (also a metric tag); the only pass followed by a collection, so a burst of
    // kernel notifications never turns into a burst of collections.
    private const string PeriodicResync = "periodic";

    // Lease events kept room for between batches; a batch of more gets an array of its own.
    private const int RetainedEventCapacity = 256;

    private readonly Dictionary<string, PeerState> _peers = new(StringComparer.Ordinal);

    // Read by the agent's status from other threads; written by the one loop after each diff.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, KernelStatusEntry> _kernelStatus = new(StringComparer.Ordinal);
    private readonly List<(string Key, PeerState State)> _removedSinceLastPass = [];
    private readonly Dictionary<System.Net.IPNetwork, string> _subnetOwners = [];
    private KernelStatusEntry? _programmedEntry; // the pass's entry for every peer it found programmed (SetKernelStatus)
    private readonly Dictionary<System.Net.IPNetwork, DateTimeOffset> _ownRouteDeletions = [];
    private DateTimeOffset? _globalRetryAt;
    private readonly TimeSpan _resyncInterval;

    // Bumped by InvalidateDesiredState: peers whose objects were built in an older generation are built again.
    private long _desiredGeneration;
    private readonly NetlinkStateApplier _netlinkApplier;
    private TimeSpan _retryDelay = s_firstRetryDelay;
    private bool _retryPending;
    private long _completedReconciliations;
    private int _refusedPeers;
    private long _processedEventBatches;

    /// <summary>Creates the engine for a backend of type <paramref name="backendType"/>, reconciling every <paramref name="resyncInterval"/>.</summary>
    protected ReconcilingNetwork(string backendType, INetlink netlink, TimeProvider timeProvider, TimeSpan resyncInterval, BackendMetrics metrics, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(netlink);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(resyncInterval, TimeSpan.Zero);
        BackendType = backendType;
        Netlink = netlink;
        TimeProvider = timeProvider;
        Metrics = metrics;
        Logger = logger;
        _resyncInterval = resyncInterval;
        _netlinkApplier = new NetlinkStateApplier(netlink);
    }

    /// <inheritdoc />
    public abstract LeaseAttributes LeaseAttributes { get; }

    /// <inheritdoc />
    public abstract int Mtu { get; }

    /// <summary>The backend type, for logs and metric tags.</summary>
    public string BackendType { get; }

    /// <summary>Completed full reconciliation passes (tests wait on it).</summary>
    internal long CompletedReconciliations => Interlocked.Read(ref _completedReconciliations);

    /// <summary>Lease event batches applied through the event path (tests wait on it).</summary>
    internal long ProcessedEventBatches => Interlocked.Read(ref _processedEventBatches);

    /// <summary>A full, compacting collection that returns the freed memory to the OS; tests count the calls.</summary>
    internal Action CollectGarbage { get; set; } = static () => GC.Collect(
        GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    /// <summary>Number of peers in the desired state.</summary>
    internal int PeerCount { get; private set; }

    /// <summary>Netlink, bound to the node's network namespace.</summary>
    protected INetlink Netlink { get; }

    /// <summary>The clock for resync ticks and retry backoff.</summary>
    protected TimeProvider TimeProvider { get; }

    /// <summary>The backend's instruments.</summary>
    protected BackendMetrics Metrics { get; }

    /// <summary>The backend's logger.</summary>
    protected ILogger Logger { get; }

    /// <summary>This node's own lease, once configured; its subnets are never programmed as a peer.</summary>
    protected Lease? OwnLease { get; set; }

    /// <summary>Serialises kernel work between the run loop and <see cref="ConfigureLeaseAsync"/>.</summary>
    protected SemaphoreSlim KernelGate { get; } = new(1, 1);

    /// <summary>The notification groups to watch; none by default.</summary>
    protected virtual NetlinkNotificationGroups NotificationGroups => NetlinkNotificationGroups.None;

    /// <inheritdoc />
    public abstract ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken);

    /// <summary>
    /// True when the lease belongs to this backend: by default when its backend type is <see cref="BackendType"/>.
    /// A lease of another type is logged at debug and treated as absent (its objects go, as when it is removed).
    /// </summary>
    protected virtual bool IsForThisBackend(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (string.Equals(lease.Attributes.BackendType, BackendType, StringComparison.Ordinal))
        {
            return true;
        }

        LogIgnoringLease(Logger, BackendType, lease.Key, lease.Attributes.BackendType ?? "(none)");
        return false;
    }

    /// <summary>
    /// The state objects one remote lease needs, each with <paramref name="owner"/> as its owner. Throws
    /// (any exception) when the lease is unusable; that peer is then skipped and logged.
    /// </summary>
    /// <remarks>
    /// The engine builds a peer's objects when its lease arrives or changes and when a refused peer is retried, and
    /// keeps them: a resync pass diffs the kept objects against the kernel instead of building 5,000 peers' objects
    /// again every interval. When the objects depend on anything besides the lease (a device's interface index, the
    /// underlay's routes), call <see cref="InvalidateDesiredState"/> when that changes; every peer is then built
    /// again before the next diff (the current pass's, when called from <see cref="PrepareReconcileAsync"/>).
    /// </remarks>
    protected abstract ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the next reconciliation build every peer's objects again (<see cref="BuildDesiredAsync"/>), because
    /// something they depend on besides the lease changed: e.g. from <see cref="PrepareReconcileAsync"/>, after
    /// recreating a device that now has another interface index. Objects that come out equal keep being used.
    /// </summary>
    protected void InvalidateDesiredState() => Interlocked.Increment(ref _desiredGeneration);

    /// <summary>Reads the state objects this backend owns now (the only ones reconciliation may delete), of every kind it builds.</summary>
    protected abstract ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The applier for objects of <paramref name="kind"/>. The base applies the rtnetlink kinds
    /// (<see cref="KernelObjectKinds"/>) through <see cref="Netlink"/>; override it to return your applier for the
    /// kinds your backend defines, and defer to the base for the rest.
    /// </summary>
    /// <exception cref="InvalidOperationException">No applier for <paramref name="kind"/>.</exception>
    protected virtual IStateApplier GetApplier(StateObjectKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return kind == KernelObjectKinds.Route || kind == KernelObjectKinds.Neighbor || kind == KernelObjectKinds.FdbEntry || kind == KernelObjectKinds.Nexthop
            ? _netlinkApplier
            : throw new InvalidOperationException($"{BackendType}: no applier for state objects of kind '{kind.Name}'; override GetApplier.");
    }

    /// <summary>Runs before each reconciliation, e.g. to recreate a device that was deleted.</summary>
    protected virtual ValueTask PrepareReconcileAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Decides whether a kernel notification means the kernel drifted; returns the reason, or null.</summary>
    protected virtual string? ResyncReasonFor(NetlinkNotification notification) =>
        notification.Kind == NetlinkNotificationKind.Overrun ? "notification-overrun" : null;

    /// <summary>True when <paramref name="subnet"/> is the subnet of a peer in the desired state right now.</summary>
    /// <remarks>A peer that was refused and waits for its retry is not desired until then: the kernel deleting its
    /// objects is our own withdrawal, not drift.</remarks>
    protected bool IsDesiredSubnet(System.Net.IPNetwork subnet) =>
        _subnetOwners.TryGetValue(subnet, out string? owner) && _peers.TryGetValue(owner, out PeerState? peer) && !peer.Refused;

    /// <summary>The leases in the desired state.</summary>
    protected IEnumerable<Lease> DesiredLeases => _peers.Values.Select(static p => p.Lease);

    /// <inheritdoc />
    public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leaseEvents);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
        using ITimer ticker = TimeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(WorkItem.Resync(PeriodicResync)),
            work.Writer,
            _resyncInterval,
            _resyncInterval);
        using ITimer retry = TimeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(WorkItem.Resync("retry")),
            work.Writer,
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);

        using var queuedEventBatches = new SemaphoreSlim(MaxQueuedEventBatches, MaxQueuedEventBatches);
        Task pump = PumpLeaseEventsAsync(leaseEvents, work.Writer, queuedEventBatches, stop.Token);
        // The kernel watch starts after the start-up pass. Subscribed before it, the kernel would build (and this
        // process read and sift) a notification for every one of the thousands of objects that pass programs, all of
        // them our own, while it programs them. What others change meanwhile the first periodic resync finds.
        Task watch = Task.CompletedTask;
        try
        {
            await ProcessAsync(work.Reader, retry, queuedEventBatches, () => watch = WatchKernelAsync(work.Writer, stop.Token), stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down leaves the data plane as it is, like flanneld.
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(pump, watch).ConfigureAwait(false);
        }
    }

    private async Task ProcessAsync(ChannelReader<WorkItem> reader, ITimer retry, SemaphoreSlim queuedEventBatches, Action startWatch, CancellationToken cancellationToken)
    {
        bool started = false;
        var events = new List<LeaseEvent>();
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Clear();
            string? resyncReason = null;
            long firstReceived = 0;
            int eventBatches = 0;
            while (reader.TryRead(out WorkItem item))
            {
                if (item.Events is { } batch)
                {
                    eventBatches++;
                    if (firstReceived == 0)
                    {
                        firstReceived = item.ReceivedTimestamp;
                    }

                    events.AddRange(batch);
                }
                else if (item.Notification is { } notification)
                {
                    // The echo of our own deletion (a withdrawn peer, a stale route) is not drift.
                    if (!IsOwnDeletion(notification))
                    {
                        resyncReason ??= ResyncReasonFor(notification);
                    }
                }
                else if (item.ResyncReason is { } reason)
                {
                    if (reason == "retry")
                    {
                        _retryPending = false;
                        _globalRetryAt = null;
                    }

                    resyncReason ??= reason;
                }
            }

            try
            {
                if (!started)
                {
                    // Nothing is reconciled before the first snapshot: an empty model would delete every peer.
                    if (eventBatches == 0)
                    {
                        continue;
                    }

                    started = true;
                    UpdateModel(events);

                    // The snapshot's batch holds an event per peer (80 KB at 5,000 peers) and the batches that follow
                    // are small: let the start-up collection below take its array.
                    events = [];
                    bool ok = await ReconcileAsync("startup", cancellationToken).ConfigureAwait(false);
                    startWatch();
                    CollectAfterLargePass(startup: true);
                    Interlocked.Increment(ref _processedEventBatches);
                    AfterPass(ok, retry);
                    continue;
                }

                bool succeeded = true;
                if (eventBatches > 0)
                {
                    succeeded = await ApplyEventsAsync(events, firstReceived, cancellationToken).ConfigureAwait(false);
                    Interlocked.Increment(ref _processedEventBatches);
                }

                if (resyncReason is not null)
                {
                    succeeded = await ReconcileAsync(resyncReason, cancellationToken).ConfigureAwait(false) && succeeded;
                    if (resyncReason == PeriodicResync)
                    {
                        CollectAfterLargePass(startup: false);
                    }
                }

                AfterPass(succeeded, retry);
            }
            finally
            {
                // The batch is programmed (or failed and its peers are scheduled for retry): the pump may ask for more.
                if (eventBatches > 0)
                {
                    queuedEventBatches.Release(eventBatches);
                }

                // Nor is a large later batch (a re-list) kept for the small ones.
                if (events.Capacity > RetainedEventCapacity)
                {
                    events = [];
                }
            }
        }
    }

    /// <summary>
    /// A full collection after a pass over many peers, when everything the pass made is garbage. A pass makes its
    /// working set all at once (start-up: the store's list, every lease, object and netlink batch; a resync: the dump
    /// of every owned kernel object and the plan's tables) and, since passes are almost all the agent allocates, a
    /// collection triggered by the budget comes in the middle of one: the working set is alive, is promoted, and piles
    /// up in the older generations until a full collection, which steady state rarely triggers.
    /// So after start-up (logged) and after each periodic resync (logged at debug), one blocking, compacting
    /// collection returns what the pass made to the OS. Measured at 5,000 peers:
    /// <list type="bullet">
    /// <item>against none (JIT, 150 s after convergence): 34 MiB anonymous instead of 72, and the same total GC pause
    /// (267 against 245 ms), because the collections it replaces each promoted a pass's working set;</item>
    /// <item>against a non-compacting one that kept the pass's memory for the next pass (native, 60 s after
    /// convergence): 51 MiB RSS instead of 61, pauses of 13-24 ms against 18-23 ms, and the CPU within the runs'
    /// spread, though the next pass commits its working set (about 13 MB) again.</item>
    /// </list>
    /// Only from <see cref="CollectGarbageMinPeers"/> peers; an embedder that manages its own heap turns both off
    /// with the AppContext switch <c>Flannel.Reconciliation.CollectAfterLargePasses</c> = false.
    /// </summary>
    private void CollectAfterLargePass(bool startup)
    {
        if (_peers.Count < CollectGarbageMinPeers
            || (AppContext.TryGetSwitch(CollectGarbageSwitch, out bool enabled) && !enabled))
        {
            return;
        }

        // The periodic pass's line is at debug: read the heap's size only when it is written.
        bool logged = startup || Logger.IsEnabled(LogLevel.Debug);
        long before = logged ? GC.GetGCMemoryInfo().TotalCommittedBytes : 0;
        long started = Stopwatch.GetTimestamp();
        CollectGarbage();
        if (!logged)
        {
            return;
        }

        double milliseconds = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        long after = GC.GetGCMemoryInfo().TotalCommittedBytes;
        if (startup)
        {
            LogHeapCompacted(Logger, BackendType, _peers.Count, before >> 20, after >> 20, milliseconds);
        }
        else
        {
            LogPassCollected(Logger, BackendType, _peers.Count, before >> 20, after >> 20, milliseconds);
        }
    }

    /// <summary>
    /// Schedules the next retry pass: soon after a failure no peer accounts for (a socket error, a stale object the
    /// kernel would not delete), backing off up to the resync interval; and when the first refused peer is due.
    /// </summary>
    private void AfterPass(bool succeeded, ITimer retry)
    {
        DateTimeOffset now = TimeProvider.GetUtcNow();
        if (succeeded)
        {
            _retryDelay = s_firstRetryDelay;
        }
        else if (!_retryPending)
        {
            _retryPending = true;
            _globalRetryAt = now + _retryDelay;
            LogRetryScheduled(Logger, BackendType, _retryDelay);
            _retryDelay = TimeSpan.FromTicks(Math.Min(_retryDelay.Ticks * 2, _resyncInterval.Ticks));
        }

        DateTimeOffset? due = _globalRetryAt;
        if (_refusedPeers > 0)
        {
            foreach (PeerState peer in _peers.Values)
            {
                if (peer.RetryAt is { } at && (due is null || at < due))
                {
                    due = at;
                }
            }
        }

        retry.Change(due is { } when ? Max(when - now, TimeSpan.FromMilliseconds(1)) : Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>True (once) for the kernel's notification of a route deletion this engine itself just made.</summary>
    private bool IsOwnDeletion(NetlinkNotification notification)
    {
        if (notification.Kind != NetlinkNotificationKind.RouteDeleted || notification.Route is not { } route
            || !_ownRouteDeletions.Remove(route.Destination, out DateTimeOffset until))
        {
            return false;
        }

        return TimeProvider.GetUtcNow() <= until;
    }

    /// <summary>Remembers the routes a pass deleted, so their deletion notifications are not taken for drift.</summary>
    private void RecordOwnDeletions(IReadOnlyList<PlannedStep> steps)
    {
        DateTimeOffset until = TimeProvider.GetUtcNow() + s_ownDeletionWindow;
        foreach (PlannedStep step in steps)
        {
            if (step.Action == RepairAction.Deleted && step.Target is KernelObject { RouteDestination: { } destination })
            {
                _ownRouteDeletions[destination] = until;
            }
        }

        if (_ownRouteDeletions.Count > 1024)
        {
            // Echoes that never came (a notification overrun): forget the expired ones.
            DateTimeOffset now = TimeProvider.GetUtcNow();
            foreach (KeyValuePair<System.Net.IPNetwork, DateTimeOffset> entry in _ownRouteDeletions.ToArray())
            {
                if (entry.Value < now)
                {
                    _ownRouteDeletions.Remove(entry.Key);
                }
            }
        }
    }

    /// <summary>Applies lease events to the model without touching the kernel (used for the first snapshot).</summary>
    private List<string> UpdateModel(IReadOnlyList<LeaseEvent> events)
    {
        // The first snapshot brings every peer at once: tables sized for it hold 5,000 peers in 5,839 slots, where
        // growing by doubling ends at 8,419 (about 70 KB per table). Later batches are small and change nothing here.
        _peers.EnsureCapacity(_peers.Count + events.Count);
        _subnetOwners.EnsureCapacity(_subnetOwners.Count + events.Count);
        var touched = new List<string>();
        foreach (LeaseEvent leaseEvent in events)
        {
            // The agent's lease set is the one owner of what arrives here: never our own lease, no renewals (an
            // Added for a known peer means its attributes changed), and removals with the attributes last added.
            Lease lease = leaseEvent.Lease;
            string key = lease.Key;
            if (leaseEvent.Type == LeaseEventType.Added && IsForThisBackend(lease))
            {
                if (_peers.TryGetValue(key, out PeerState? existing))
                {
                    // New attributes: whatever was refused before may work now; try at once.
                    existing.Lease = lease;
                    existing.RetryAt = null;
                    existing.Failures = 0;
                }
                else
                {
                    _peers.Add(key, new PeerState(lease));
                    IndexSubnets(lease, key, add: true);
                }

                touched.Add(key);
            }
            else if (_peers.Remove(key, out PeerState? removed))
            {
                SetRefused(removed, false);
                _kernelStatus.TryRemove(key, out _);
                IndexSubnets(removed.Lease, key, add: false);
                // A removal, or the peer switched to another backend type: its objects go.
                touched.Add(key);
                _removedSinceLastPass.Add((key, removed));
            }
        }

        Metrics.PeersChanged(_peers.Count - PeerCount);
        PeerCount = _peers.Count;
        return touched;
    }

    private void IndexSubnets(Lease lease, string key, bool add)
    {
        foreach (System.Net.IPNetwork? subnet in (System.Net.IPNetwork?[])[lease.Subnet, lease.IPv6Subnet])
        {
            if (subnet is { } value)
            {
                if (add)
                {
                    _subnetOwners[value] = key;
                }
                else
                {
                    _subnetOwners.Remove(value);
                }
            }
        }
    }

    private async Task<bool> ApplyEventsAsync(IReadOnlyList<LeaseEvent> events, long receivedTimestamp, CancellationToken cancellationToken)
    {
        // What was programmed for each touched peer, captured before the model changes.
        var previous = new Dictionary<string, IReadOnlyList<StateObject>>(StringComparer.Ordinal);
        foreach (LeaseEvent leaseEvent in events)
        {
            string key = leaseEvent.Lease.Key;
            if (!previous.ContainsKey(key) && _peers.TryGetValue(key, out PeerState? state))
            {
                previous[key] = state.Programmed ?? [];
            }
        }

        List<string> touched = UpdateModel(events);
        foreach ((string key, PeerState state) in _removedSinceLastPass)
        {
            previous.TryAdd(key, state.Programmed ?? []);
        }

        _removedSinceLastPass.Clear();
        if (touched.Count == 0)
        {
            return true;
        }

        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var desired = new List<StateObject>();
            var observed = new List<StateObject>();
            foreach (string key in touched.Distinct(StringComparer.Ordinal))
            {
                if (previous.TryGetValue(key, out IReadOnlyList<StateObject>? before))
                {
                    observed.AddRange(before);
                }

                if (_peers.TryGetValue(key, out PeerState? state))
                {
                    await TryBuildDesiredAsync(state, key, desired, cancellationToken).ConfigureAwait(false);
                }
            }

            ReconcilePlan plan = ReconcilePlan.Create(desired, observed);
            ApplyOutcome outcome = await ExecuteAsync(plan, RepairCounting.None, cancellationToken).ConfigureAwait(false);
            DateTimeOffset checkedAt = TimeProvider.GetUtcNow();
            foreach (string key in touched)
            {
                if (_peers.TryGetValue(key, out PeerState? state))
                {
                    RecordProgrammed(state, key, plan, outcome, repairs: null, checkedAt);
                }
            }

            Metrics.EventsProgrammed(TimeProvider.GetElapsedTime(receivedTimestamp));
            return outcome.UnownedFailures == 0; // a refused or unusable peer has its own retry
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Whatever an applier throws (a netlink socket error, a wireguard-go socket gone) fails this pass only.
            LogEventBatchFailed(Logger, BackendType, ex);
            foreach (string key in touched)
            {
                if (_peers.TryGetValue(key, out PeerState? state))
                {
                    state.Programmed = null;
                    state.Failed = true;
                }
            }

            return false;
        }
        finally
        {
            KernelGate.Release();
        }
    }

    /// <summary>Runs one full reconciliation: prepare, dump, diff against the whole model, repair.</summary>
    private async Task<bool> ReconcileAsync(string reason, CancellationToken cancellationToken)
    {
        _removedSinceLastPass.Clear();
        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await PrepareReconcileAsync(cancellationToken).ConfigureAwait(false);
            IReadOnlyList<StateObject> observed = await DumpOwnedAsync(cancellationToken).ConfigureAwait(false);
            var desired = new List<StateObject>(_peers.Count * 3);
            bool buildFailed = false;
            DateTimeOffset now = TimeProvider.GetUtcNow();
            HashSet<string>? waiting = null;
            foreach ((string key, PeerState state) in _peers)
            {
                if (state.RetryAt is { } at && at > now)
                {
                    // Refused, and not due yet: it stays out of the kernel (its objects, if any, are deleted).
                    (waiting ??= new HashSet<string>(StringComparer.Ordinal)).Add(key);
                    continue;
                }

                state.RetryAt = null;
                if (state.Programmed is { } programmed && !state.Failed && state.DesiredGeneration == Interlocked.Read(ref _desiredGeneration))
                {
                    // Built from this lease since the backend last invalidated: the same objects again.
                    desired.AddRange(programmed);
                    continue;
                }

                buildFailed |= !await TryBuildDesiredAsync(state, key, desired, cancellationToken).ConfigureAwait(false);
            }

            ReconcilePlan plan = ReconcilePlan.Create(desired, observed);
            // At startup, creating every peer is programming, not repair; fixing or deleting leftovers is repair.
            RepairCounting counting = reason == "startup" ? RepairCounting.FixesAndDeletes : RepairCounting.All;
            ApplyOutcome outcome = await ExecuteAsync(plan, counting, cancellationToken).ConfigureAwait(false);
            // What the diff found per peer, grouped once (a device recreated behind our back re-adds every object).
            Dictionary<string, List<PlannedStep>>? repairs = null;
            if (reason != "startup")
            {
                foreach (PlannedStep step in plan.Steps)
                {
                    if (step.Action != RepairAction.Deleted && step.Target.Owner is { } owner)
                    {
                        repairs ??= new Dictionary<string, List<PlannedStep>>(StringComparer.Ordinal);
                        if (!repairs.TryGetValue(owner, out List<PlannedStep>? list))
                        {
                            list = [];
                            repairs.Add(owner, list);
                        }

                        list.Add(step);
                    }
                }
            }

            DateTimeOffset checkedAt = TimeProvider.GetUtcNow();
            foreach ((string key, PeerState state) in _peers)
            {
                if (waiting is null || !waiting.Contains(key))
                {
                    RecordProgrammed(state, key, plan, outcome, repairs?.GetValueOrDefault(key), checkedAt);
                }
            }

            if (!plan.IsEmpty)
            {
                LogReconciled(Logger, BackendType, reason, plan.Steps.Count, outcome.FailedOperations);
            }

            Metrics.Reconciled(reason, outcome.Succeeded && !buildFailed);

            // A refused or unusable peer has its own retry; only the other failures call for another pass.
            return outcome.UnownedFailures == 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogReconcileFailed(Logger, BackendType, reason, ex);
            Metrics.Reconciled(reason, succeeded: false);
            return false;
        }
        finally
        {
            Interlocked.Increment(ref _completedReconciliations);
            KernelGate.Release();
        }
    }

    private async ValueTask<bool> TryBuildDesiredAsync(PeerState state, string key, List<StateObject> desired, CancellationToken cancellationToken)
    {
        try
        {
            long generation = Interlocked.Read(ref _desiredGeneration);
            IReadOnlyList<StateObject> built = await BuildDesiredAsync(state.Lease, key, cancellationToken).ConfigureAwait(false);
            desired.AddRange(state.Programmed is { } programmed && HaveSameState(programmed, built) ? programmed : built);
            state.DesiredGeneration = generation;
            state.Failed = false;
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One bad lease (unparsable backend data, an unusable address) never stops the others; it is logged
            // (rate-limited) and retried with backoff like a refused peer.
            state.LastError = $"its lease cannot be programmed: {ex.Message}";
            state.Failed = true;
            state.Programmed = null;
            return false;
        }
    }

    /// <summary>
    /// True when two object lists of one peer ask for the same keys with equal content, in the same order. A resync
    /// rebuilds every peer's objects; an unchanged peer keeps the ones it was programmed with, so the thousands of
    /// objects the engine keeps live stay put instead of being replaced on every pass (each replaced set would
    /// otherwise age into the oldest generation and only die there, growing the heap after convergence).
    /// </summary>
    private static bool HaveSameState(StateObject[] programmed, IReadOnlyList<StateObject> built)
    {
        if (programmed.Length != built.Count)
        {
            return false;
        }

        for (int i = 0; i < built.Count; i++)
        {
            if (!programmed[i].Key.Equals(built[i].Key) || !programmed[i].Content.Equals(built[i].Content))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when both lists hold the same object instances in the same order.</summary>
    private static bool HoldSameObjects(StateObject[] left, IReadOnlyList<StateObject> right)
    {
        if (left.Length != right.Count)
        {
            return false;
        }

        for (int i = 0; i < left.Length; i++)
        {
            if (!ReferenceEquals(left[i], right[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc />
    public PeerKernelStatus GetPeerKernelStatus(string leaseKey) =>
        _kernelStatus.TryGetValue(leaseKey, out KernelStatusEntry? entry) ? entry.ToStatus() : PeerKernelStatus.Unknown;

    /// <summary>
    /// Records a peer's kernel status. The peers a pass found programmed, nearly all of them nearly always, share one
    /// entry per pass (an entry of their own was 40 bytes per peer, 200 KB at 5,000); setting it over an existing
    /// key writes the value in place. Any other status that did not change only moves its check time: a resync checks
    /// every peer, and a new record per peer per pass would be objects replaced every interval.
    /// </summary>
    private void SetKernelStatus(string key, PeerKernelState kernelState, string? detail, DateTimeOffset checkedAt)
    {
        if (kernelState == PeerKernelState.Programmed && detail is null)
        {
            if (_programmedEntry is not { } shared || shared.CheckedAt != checkedAt)
            {
                _programmedEntry = shared = new KernelStatusEntry(kernelState, null, checkedAt);
            }

            _kernelStatus[key] = shared;
            return;
        }

        // Never the shared entry: only a programmed status without detail is shared, and that returned above.
        if (_kernelStatus.TryGetValue(key, out KernelStatusEntry? entry) && entry.State == kernelState && entry.Detail == detail)
        {
            entry.CheckedAt = checkedAt;
            return;
        }

        _kernelStatus[key] = new KernelStatusEntry(kernelState, detail, checkedAt);
    }

    /// <summary>
    /// Records what the last diff found for a peer: <paramref name="repairs"/> are the peer's steps of a diff against
    /// a kernel dump (every reconciliation but the first), which alone can find objects missing or drifted; the event
    /// path and the startup pass program what the peer needs, which is not a repair.
    /// </summary>
    private void RecordProgrammed(PeerState state, string key, ReconcilePlan plan, ApplyOutcome outcome, List<PlannedStep>? repairs, DateTimeOffset now)
    {
        if (outcome.FailedOwners.Contains(key))
        {
            state.Programmed = null;
            state.Failed = true;
            MarkRefused(state, key, now);
            SetKernelStatus(key, PeerKernelState.Missing, $"{state.LastError ?? "the kernel refused one of its objects"}; the peer is withdrawn and retried", now);
            return;
        }

        if (state.Failed)
        {
            MarkRefused(state, key, now);
            SetKernelStatus(key, PeerKernelState.Missing, state.LastError ?? "its lease cannot be programmed (see the agent's log)", now);
            return;
        }

        if (state.Refused)
        {
            LogPeerRecovered(Logger, BackendType, key, state.Failures);
            SetRefused(state, false);
        }

        state.Failures = 0;
        state.RetryAt = null;

        IReadOnlyList<StateObject> objects = plan.DesiredByOwner.TryGetValue(key, out IReadOnlyList<StateObject>? desired) ? desired : [];
        if (state.Programmed is not { } programmed || !HoldSameObjects(programmed, objects))
        {
            state.Programmed = [.. objects];
        }

        if (repairs is null)
        {
            SetKernelStatus(key, PeerKernelState.Programmed, null, now);
            return;
        }

        bool drifted = repairs.Any(s => s.Action == RepairAction.Fixed);
        string what = string.Join("; ", repairs.Select(s => $"{(s.Action == RepairAction.Fixed ? "fixed" : "re-added")} {s.Target.Description}"));
        SetKernelStatus(
            key,
            drifted ? PeerKernelState.Drifted : PeerKernelState.Missing,
            $"{repairs.Count} of {objects.Count} objects {(drifted ? "differed" : "were missing")}: {what}",
            now);
    }

    /// <summary>
    /// Puts a peer that could not be programmed on its own exponential backoff with jitter, and warns about it at most
    /// once per <see cref="s_peerWarningInterval"/> for the same problem, counting what it suppressed.
    /// </summary>
    private void MarkRefused(PeerState state, string key, DateTimeOffset now)
    {
        SetRefused(state, true);
        state.Failures++;
        double exponential = s_peerRetryFirst.TotalSeconds * Math.Pow(2, Math.Min(state.Failures - 1, 20));
        double jitter = 0.8 + (0.4 * Random.Shared.NextDouble());
        var delay = TimeSpan.FromSeconds(Math.Min(exponential, s_peerRetryMax.TotalSeconds) * jitter);
        state.RetryAt = now + delay;

        string problem = state.LastError ?? "it could not be programmed";
        if (problem == state.LastWarning && now - state.LastWarnedAt < s_peerWarningInterval)
        {
            state.Suppressed++;
            LogPeerRefusedAgain(Logger, BackendType, key, state.Failures, delay);
            return;
        }

        LogPeerRefused(Logger, BackendType, key, problem, state.Failures, delay, state.Suppressed);
        state.LastWarning = problem;
        state.LastWarnedAt = now;
        state.Suppressed = 0;
    }

    private void SetRefused(PeerState state, bool refused)
    {
        if (state.Refused != refused)
        {
            state.Refused = refused;
            _refusedPeers += refused ? 1 : -1;
            Metrics.RefusedPeersChanged(refused ? 1 : -1);
        }
    }

    /// <summary>Sends a plan as one batch, withdraws peers whose objects failed, and counts repairs.</summary>
    private async Task<ApplyOutcome> ExecuteAsync(ReconcilePlan plan, RepairCounting counting, CancellationToken cancellationToken)
    {
        if (plan.IsEmpty)
        {
            return ApplyOutcome.Clean;
        }

        RecordOwnDeletions(plan.Steps);
        IReadOnlyList<Exception?> result = await ApplyStepsAsync(plan.Steps, cancellationToken).ConfigureAwait(false);
        var failedOwners = new HashSet<string>(StringComparer.Ordinal);
        int failedOperations = 0;
        int unownedFailures = 0;
        for (int i = 0; i < plan.Steps.Count; i++)
        {
            PlannedStep step = plan.Steps[i];
            Exception? error = result[i];
            if (error is null)
            {
                if (counting == RepairCounting.All || (counting == RepairCounting.FixesAndDeletes && step.Action != RepairAction.Added))
                {
                    Metrics.Repaired(step.Target.Kind, step.Action);
                }

                continue;
            }

            failedOperations++;
            Metrics.OperationFailed(step.Target.Kind);
            if (step.Action != RepairAction.Deleted && step.Target.Owner is { } owner && _peers.TryGetValue(owner, out PeerState? peer))
            {
                // Reported once per peer, rate-limited, when the peer is put on backoff (MarkRefused).
                if (failedOwners.Add(owner))
                {
                    peer.LastError = $"kernel refused to {ActionVerb(step.Action)} {step.Target.Description}: {error.Message}";
                }
            }
            else
            {
                unownedFailures++;
                LogOperationFailed(Logger, BackendType, step.Action, step.Target.Description, error.Message);
            }
        }

        if (failedOwners.Count > 0)
        {
            await WithdrawAsync(plan, failedOwners, cancellationToken).ConfigureAwait(false);
        }

        return new ApplyOutcome(failedOwners, failedOperations, unownedFailures);
    }

    /// <summary>Deletes every object of the failed peers, so none is left half-programmed (flannel's rollback).</summary>
    private async Task WithdrawAsync(ReconcilePlan plan, HashSet<string> failedOwners, CancellationToken cancellationToken)
    {
        var objects = new List<StateObject>();
        foreach (string owner in failedOwners)
        {
            Metrics.PeerFailed();
            if (plan.DesiredByOwner.TryGetValue(owner, out IReadOnlyList<StateObject>? owned))
            {
                objects.AddRange(owned);
            }
        }

        ReconcilePlan rollback = ReconcilePlan.Create([], objects);
        if (rollback.IsEmpty)
        {
            return;
        }

        RecordOwnDeletions(rollback.Steps);
        IReadOnlyList<Exception?> result = await ApplyStepsAsync(rollback.Steps, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < result.Count; i++)
        {
            if (result[i] is { } error)
            {
                LogOperationFailed(Logger, BackendType, RepairAction.Deleted, rollback.Steps[i].Target.Description, error.Message);
            }
        }
    }

    /// <summary>
    /// Applies steps in order, each consecutive run of one applier in one call, so the plan's order across kinds
    /// holds; returns one entry per step.
    /// </summary>
    private async Task<IReadOnlyList<Exception?>> ApplyStepsAsync(IReadOnlyList<PlannedStep> steps, CancellationToken cancellationToken)
    {
        var errors = new Exception?[steps.Count];
        int start = 0;
        while (start < steps.Count)
        {
            IStateApplier applier = GetApplier(steps[start].Target.Kind);
            int end = start + 1;
            while (end < steps.Count && ReferenceEquals(GetApplier(steps[end].Target.Kind), applier))
            {
                end++;
            }

            IReadOnlyList<PlannedStep> run = start == 0 && end == steps.Count ? steps : steps.Skip(start).Take(end - start).ToList();
            IReadOnlyList<Exception?> result = await applier.ApplyAsync(run, cancellationToken).ConfigureAwait(false);
            if (result.Count != run.Count)
            {
                throw new InvalidOperationException($"{BackendType}: the applier for '{steps[start].Target.Kind.Name}' returned {result.Count} result(s) for {run.Count} step(s).");
            }

            for (int i = 0; i < run.Count; i++)
            {
                errors[start + i] = result[i];
            }

            start = end;
        }

        return errors;
    }

    private async Task PumpLeaseEventsAsync(
        IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, ChannelWriter<WorkItem> writer, SemaphoreSlim queuedEventBatches, CancellationToken cancellationToken)
    {
        try
        {
            await using IAsyncEnumerator<IReadOnlyList<LeaseEvent>> batches = leaseEvents.GetAsyncEnumerator(cancellationToken);
            while (true)
            {
                // The previous batch is programmed before the next one is asked for.
                await queuedEventBatches.WaitAsync(cancellationToken).ConfigureAwait(false);
                if (!await batches.MoveNextAsync().ConfigureAwait(false))
                {
                    break;
                }

                writer.TryWrite(WorkItem.ForEvents(batches.Current, TimeProvider.GetTimestamp()));
            }

            writer.TryComplete();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            writer.TryComplete();
        }
        catch (Exception ex)
        {
            writer.TryComplete(ex);
        }
    }

    private async Task WatchKernelAsync(ChannelWriter<WorkItem> writer, CancellationToken cancellationToken)
    {
        NetlinkNotificationGroups groups = NotificationGroups;
        if (groups == NetlinkNotificationGroups.None)
        {
            return;
        }

        TimeSpan backoff = s_firstRetryDelay;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (NetlinkNotification notification in Netlink.WatchAsync(groups, cancellationToken).ConfigureAwait(false))
                {
                    backoff = s_firstRetryDelay;
                    writer.TryWrite(WorkItem.ForNotification(notification));
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NetlinkException or IOException or InvalidOperationException or NotSupportedException)
            {
                // Without notifications the resync ticks still repair everything, only later.
                LogWatchFailed(Logger, BackendType, backoff, ex);
            }

            try
            {
                await Task.Delay(backoff, TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, s_maxWatchBackoff.Ticks));
        }
    }

    private enum RepairCounting
    {
        None,
        FixesAndDeletes,
        All,
    }

    private sealed class PeerState(Lease lease)
    {
        private Lease _lease = lease;

        public Lease Lease
        {
            get => _lease;
            set
            {
                _lease = value;
                DesiredGeneration = -1; // built from another lease
            }
        }

        /// <summary>The <see cref="_desiredGeneration"/> the peer's objects were last built in; -1 when never, or from an older lease.</summary>
        public long DesiredGeneration { get; set; } = -1;

        /// <summary>The objects last programmed for the peer (an exact-size copy of the plan's list); null when unknown or withdrawn.</summary>
        public StateObject[]? Programmed { get; set; }

        /// <summary>The peer could not be programmed; the next reconciliation retries it.</summary>
        public bool Failed { get; set; } = true;

        /// <summary>The peer was refused (by the kernel, or its lease is unusable) and is on backoff.</summary>
        public bool Refused { get; set; }

        // What only a peer in trouble needs (48 bytes), made on its first failure or warning: at 5,000 healthy peers
        // that is 240 KB the engine does not keep. Setting a field to its default never makes it.
        private PeerTrouble? _trouble;

        /// <summary>Consecutive failed attempts.</summary>
        public int Failures { get => _trouble?.Failures ?? 0; set => SetTrouble(value, static (t, v) => t.Failures = v); }

        /// <summary>When a refused peer is tried again; until then it is left out of the kernel.</summary>
        public DateTimeOffset? RetryAt { get => _trouble?.RetryAt; set => SetTrouble(value, static (t, v) => t.RetryAt = v); }

        /// <summary>What went wrong in the last attempt.</summary>
        public string? LastError { get => _trouble?.LastError; set => SetTrouble(value, static (t, v) => t.LastError = v); }

        public string? LastWarning { get => _trouble?.LastWarning; set => SetTrouble(value, static (t, v) => t.LastWarning = v); }

        public DateTimeOffset LastWarnedAt { get => _trouble?.LastWarnedAt ?? default; set => SetTrouble(value, static (t, v) => t.LastWarnedAt = v); }

        /// <summary>Warnings about this peer not logged since the last one.</summary>
        public int Suppressed { get => _trouble?.Suppressed ?? 0; set => SetTrouble(value, static (t, v) => t.Suppressed = v); }

        /// <summary>Sets a trouble field; a default value on a peer without trouble changes nothing, so makes nothing.</summary>
        private void SetTrouble<T>(T value, Action<PeerTrouble, T> set)
        {
            if (_trouble is not null || !EqualityComparer<T>.Default.Equals(value, default))
            {
                set(_trouble ??= new PeerTrouble(), value);
            }
        }

        private sealed class PeerTrouble
        {
            public int Failures;
            public int Suppressed;
            public DateTimeOffset? RetryAt;
            public string? LastError;
            public string? LastWarning;
            public DateTimeOffset LastWarnedAt;
        }
    }

    /// <summary>A peer's kernel status as the engine keeps it; read from other threads (status endpoints).</summary>
    private sealed class KernelStatusEntry(PeerKernelState state, string? detail, DateTimeOffset checkedAt)
    {
        private long _checkedAtUtcTicks = checkedAt.UtcTicks;

        public PeerKernelState State { get; } = state;

        public string? Detail { get; } = detail;

        public DateTimeOffset CheckedAt
        {
            get => new(Volatile.Read(ref _checkedAtUtcTicks), TimeSpan.Zero);
            set => Volatile.Write(ref _checkedAtUtcTicks, value.UtcTicks);
        }

        public PeerKernelStatus ToStatus() => new(State, Detail, CheckedAt);
    }

    private readonly record struct WorkItem(IReadOnlyList<LeaseEvent>? Events, long ReceivedTimestamp, NetlinkNotification? Notification, string? ResyncReason)
    {
        public static WorkItem ForEvents(IReadOnlyList<LeaseEvent> events, long timestamp) => new(events, timestamp, null, null);

        public static WorkItem ForNotification(NetlinkNotification notification) => new(null, 0, notification, null);

        public static WorkItem Resync(string reason) => new(null, 0, null, reason);
    }

    private sealed record ApplyOutcome(HashSet<string> FailedOwners, int FailedOperations, int UnownedFailures)
    {
        public static ApplyOutcome Clean { get; } = new([], 0, 0);

        public bool Succeeded => FailedOperations == 0;
    }

    [LoggerMessage(EventId = 5910, Level = LogLevel.Information, Message = "{Backend}: start-up programmed {Peers} peers; one full collection took the GC heap from {BeforeMiB} MiB to {AfterMiB} MiB committed in {Milliseconds:0} ms")]
    private static partial void LogHeapCompacted(ILogger logger, string backend, int peers, long beforeMiB, long afterMiB, double milliseconds);

    [LoggerMessage(EventId = 5911, Level = LogLevel.Debug, Message = "{Backend}: a resync over {Peers} peers; a full collection of its garbage took the GC heap from {BeforeMiB} MiB to {AfterMiB} MiB committed in {Milliseconds:0.0} ms")]
    private static partial void LogPassCollected(ILogger logger, string backend, int peers, long beforeMiB, long afterMiB, double milliseconds);

    [LoggerMessage(EventId = 5909, Level = LogLevel.Debug, Message = "{Backend}: ignoring lease {Lease} of backend type {BackendType}")]
    private static partial void LogIgnoringLease(ILogger logger, string backend, string lease, string backendType);

    [LoggerMessage(EventId = 5900, Level = LogLevel.Warning, Message = "{Backend}: kernel refused to {Action} {Object}: {Error}")]
    private static partial void LogOperationFailed(ILogger logger, string backend, RepairAction action, string @object, string error);

    [LoggerMessage(EventId = 5901, Level = LogLevel.Warning, Message = "{Backend}: peer {Lease} withdrawn: {Problem}; attempt {Attempt} failed, retrying in {Delay} ({Suppressed} identical warnings suppressed since the last one)")]
    private static partial void LogPeerRefused(ILogger logger, string backend, string lease, string problem, int attempt, TimeSpan delay, int suppressed);

    [LoggerMessage(EventId = 5902, Level = LogLevel.Debug, Message = "{Backend}: peer {Lease} refused again (attempt {Attempt}); retrying in {Delay}")]
    private static partial void LogPeerRefusedAgain(ILogger logger, string backend, string lease, int attempt, TimeSpan delay);

    [LoggerMessage(EventId = 5908, Level = LogLevel.Information, Message = "{Backend}: peer {Lease} is programmed after {Failures} failed attempt(s)")]
    private static partial void LogPeerRecovered(ILogger logger, string backend, string lease, int failures);

    private static string ActionVerb(RepairAction action) => action switch
    {
        RepairAction.Added => "add",
        RepairAction.Fixed => "fix",
        _ => "delete",
    };

    [LoggerMessage(EventId = 5903, Level = LogLevel.Information, Message = "{Backend}: reconciliation ({Reason}) sent {Steps} change(s), {Failed} failed")]
    private static partial void LogReconciled(ILogger logger, string backend, string reason, int steps, int failed);

    [LoggerMessage(EventId = 5904, Level = LogLevel.Error, Message = "{Backend}: reconciliation ({Reason}) failed")]
    private static partial void LogReconcileFailed(ILogger logger, string backend, string reason, Exception exception);

    [LoggerMessage(EventId = 5905, Level = LogLevel.Error, Message = "{Backend}: programming lease events failed")]
    private static partial void LogEventBatchFailed(ILogger logger, string backend, Exception exception);

    [LoggerMessage(EventId = 5906, Level = LogLevel.Warning, Message = "{Backend}: kernel notifications failed; resubscribing in {Delay}")]
    private static partial void LogWatchFailed(ILogger logger, string backend, TimeSpan delay, Exception exception);

    [LoggerMessage(EventId = 5907, Level = LogLevel.Debug, Message = "{Backend}: reconciling again in {Delay} after an error")]
    private static partial void LogRetryScheduled(ILogger logger, string backend, TimeSpan delay);
}
