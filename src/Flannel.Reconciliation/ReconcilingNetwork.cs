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
/// The shared engine of the vxlan and host-gw networks: the desired-state model, the event and reconcile
/// paths, resync ticks, retry backoff and the notification watch.
/// </summary>
public abstract partial class ReconcilingNetwork : INetwork, IPeerKernelStateSource
{
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan s_maxWatchBackoff = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, PeerState> _peers = new(StringComparer.Ordinal);

    // Read by the agent's status from other threads; written by the one loop after each diff.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PeerKernelStatus> _kernelStatus = new(StringComparer.Ordinal);
    private readonly List<(string Key, PeerState State)> _removedSinceLastPass = [];
    private readonly Dictionary<System.Net.IPNetwork, string> _subnetOwners = [];
    private readonly TimeSpan _resyncInterval;
    private TimeSpan _retryDelay = s_firstRetryDelay;
    private bool _retryPending;
    private long _completedReconciliations;
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

    /// <summary>True when the lease belongs to this backend; logs (at debug) and returns false otherwise.</summary>
    protected abstract bool IsForThisBackend(Lease lease);

    /// <summary>
    /// The kernel objects one remote lease needs, each with <paramref name="owner"/> as its owner. Throws
    /// (any exception) when the lease is unusable; that peer is then skipped and logged.
    /// </summary>
    protected abstract ValueTask<IReadOnlyList<KernelObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken);

    /// <summary>Dumps the kernel objects this backend owns (the only ones reconciliation may delete).</summary>
    protected abstract ValueTask<IReadOnlyList<KernelObject>> DumpOwnedAsync(CancellationToken cancellationToken);

    /// <summary>Runs before each reconciliation, e.g. to recreate a device that was deleted.</summary>
    protected virtual ValueTask PrepareReconcileAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Decides whether a kernel notification means the kernel drifted; returns the reason, or null.</summary>
    protected virtual string? ResyncReasonFor(NetlinkNotification notification) =>
        notification.Kind == NetlinkNotificationKind.Overrun ? "notification-overrun" : null;

    /// <summary>True when <paramref name="subnet"/> is the subnet of a peer in the desired state right now.</summary>
    protected bool IsDesiredSubnet(System.Net.IPNetwork subnet) => _subnetOwners.ContainsKey(subnet);

    /// <summary>The leases in the desired state.</summary>
    protected IEnumerable<Lease> DesiredLeases => _peers.Values.Select(static p => p.Lease);

    /// <inheritdoc />
    public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leaseEvents);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
        using ITimer ticker = TimeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(WorkItem.Resync("periodic")),
            work.Writer,
            _resyncInterval,
            _resyncInterval);
        using ITimer retry = TimeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(WorkItem.Resync("retry")),
            work.Writer,
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);

        Task pump = PumpLeaseEventsAsync(leaseEvents, work.Writer, stop.Token);
        Task watch = WatchKernelAsync(work.Writer, stop.Token);
        try
        {
            await ProcessAsync(work.Reader, retry, stop.Token).ConfigureAwait(false);
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

    private async Task ProcessAsync(ChannelReader<WorkItem> reader, ITimer retry, CancellationToken cancellationToken)
    {
        bool started = false;
        var events = new List<LeaseEvent>();
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            events.Clear();
            string? resyncReason = null;
            long firstReceived = 0;
            bool sawEvents = false;
            while (reader.TryRead(out WorkItem item))
            {
                if (item.Events is { } batch)
                {
                    sawEvents = true;
                    if (firstReceived == 0)
                    {
                        firstReceived = item.ReceivedTimestamp;
                    }

                    events.AddRange(batch);
                }
                else if (item.Notification is { } notification)
                {
                    resyncReason ??= ResyncReasonFor(notification);
                }
                else if (item.ResyncReason is { } reason)
                {
                    if (reason == "retry")
                    {
                        _retryPending = false;
                    }

                    resyncReason ??= reason;
                }
            }

            if (!started)
            {
                // Nothing is reconciled before the first snapshot: an empty model would delete every peer.
                if (!sawEvents)
                {
                    continue;
                }

                started = true;
                UpdateModel(events);
                bool ok = await ReconcileAsync("startup", cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _processedEventBatches);
                AfterPass(ok, retry);
                continue;
            }

            bool succeeded = true;
            if (sawEvents)
            {
                succeeded = await ApplyEventsAsync(events, firstReceived, cancellationToken).ConfigureAwait(false);
                Interlocked.Increment(ref _processedEventBatches);
            }

            if (resyncReason is not null)
            {
                succeeded = await ReconcileAsync(resyncReason, cancellationToken).ConfigureAwait(false) && succeeded;
            }

            AfterPass(succeeded, retry);
        }
    }

    private void AfterPass(bool succeeded, ITimer retry)
    {
        if (succeeded)
        {
            _retryDelay = s_firstRetryDelay;
            return;
        }

        // After any netlink error, reconcile again soon, backing off up to the resync interval.
        if (!_retryPending)
        {
            _retryPending = true;
            retry.Change(_retryDelay, Timeout.InfiniteTimeSpan);
            LogRetryScheduled(Logger, BackendType, _retryDelay);
            _retryDelay = TimeSpan.FromTicks(Math.Min(_retryDelay.Ticks * 2, _resyncInterval.Ticks));
        }
    }

    /// <summary>Applies lease events to the model without touching the kernel (used for the first snapshot).</summary>
    private List<string> UpdateModel(IReadOnlyList<LeaseEvent> events)
    {
        var touched = new List<string>();
        foreach (LeaseEvent leaseEvent in events)
        {
            Lease lease = leaseEvent.Lease;
            if (OwnLease is { } own && own.HasSameSubnets(lease))
            {
                continue;
            }

            string key = lease.Key;
            if (leaseEvent.Type == LeaseEventType.Added && IsForThisBackend(lease))
            {
                if (_peers.TryGetValue(key, out PeerState? existing))
                {
                    if (!existing.Failed && existing.Lease.Attributes == lease.Attributes)
                    {
                        // A renewal re-delivers the same attributes; there is nothing to program.
                        existing.Lease = lease;
                        continue;
                    }

                    existing.Lease = lease;
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
        var previous = new Dictionary<string, IReadOnlyList<KernelObject>>(StringComparer.Ordinal);
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
            var desired = new List<KernelObject>();
            var observed = new List<KernelObject>();
            bool buildFailed = false;
            foreach (string key in touched.Distinct(StringComparer.Ordinal))
            {
                if (previous.TryGetValue(key, out IReadOnlyList<KernelObject>? before))
                {
                    observed.AddRange(before);
                }

                if (_peers.TryGetValue(key, out PeerState? state))
                {
                    buildFailed |= !await TryBuildDesiredAsync(state, key, desired, cancellationToken).ConfigureAwait(false);
                }
            }

            ReconcilePlan plan = ReconcilePlan.Create(desired, observed);
            ApplyOutcome outcome = await ExecuteAsync(plan, RepairCounting.None, cancellationToken).ConfigureAwait(false);
            foreach (string key in touched)
            {
                if (_peers.TryGetValue(key, out PeerState? state))
                {
                    RecordProgrammed(state, key, plan, outcome, againstKernel: false);
                }
            }

            Metrics.EventsProgrammed(TimeProvider.GetElapsedTime(receivedTimestamp));
            return outcome.Succeeded && !buildFailed;
        }
        catch (Exception ex) when (ex is NetlinkException or IOException)
        {
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
            IReadOnlyList<KernelObject> observed = await DumpOwnedAsync(cancellationToken).ConfigureAwait(false);
            var desired = new List<KernelObject>(_peers.Count * 3);
            bool buildFailed = false;
            foreach ((string key, PeerState state) in _peers)
            {
                buildFailed |= !await TryBuildDesiredAsync(state, key, desired, cancellationToken).ConfigureAwait(false);
            }

            ReconcilePlan plan = ReconcilePlan.Create(desired, observed);
            // At startup, creating every peer is programming, not repair; fixing or deleting leftovers is repair.
            RepairCounting counting = reason == "startup" ? RepairCounting.FixesAndDeletes : RepairCounting.All;
            ApplyOutcome outcome = await ExecuteAsync(plan, counting, cancellationToken).ConfigureAwait(false);
            foreach ((string key, PeerState state) in _peers)
            {
                RecordProgrammed(state, key, plan, outcome, againstKernel: reason != "startup");
            }

            if (!plan.IsEmpty)
            {
                LogReconciled(Logger, BackendType, reason, plan.Steps.Count, outcome.FailedOperations);
            }

            bool succeeded = outcome.Succeeded && !buildFailed;
            Metrics.Reconciled(reason, succeeded);
            return succeeded;
        }
        catch (Exception ex) when (ex is NetlinkException or IOException or InvalidOperationException)
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

    private async ValueTask<bool> TryBuildDesiredAsync(PeerState state, string key, List<KernelObject> desired, CancellationToken cancellationToken)
    {
        try
        {
            desired.AddRange(await BuildDesiredAsync(state.Lease, key, cancellationToken).ConfigureAwait(false));
            state.Failed = false;
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One bad lease (unparsable backend data, an unusable address) never stops the others.
            LogBadPeer(Logger, BackendType, key, ex.Message);
            state.Failed = true;
            state.Programmed = null;
            return false;
        }
    }

    /// <inheritdoc />
    public PeerKernelStatus GetPeerKernelStatus(string leaseKey) =>
        _kernelStatus.TryGetValue(leaseKey, out PeerKernelStatus? status) ? status : PeerKernelStatus.Unknown;

    /// <summary>
    /// Records what the last diff found for a peer. Only a diff against a kernel dump (<paramref name="againstKernel"/>,
    /// every reconciliation but the first) can find objects missing or drifted; the event path and the startup pass
    /// program what the peer needs, which is not a repair.
    /// </summary>
    private void RecordProgrammed(PeerState state, string key, ReconcilePlan plan, ApplyOutcome outcome, bool againstKernel)
    {
        DateTimeOffset now = TimeProvider.GetUtcNow();
        if (outcome.FailedOwners.Contains(key))
        {
            state.Programmed = null;
            state.Failed = true;
            _kernelStatus[key] = new PeerKernelStatus(PeerKernelState.Missing, "the kernel refused one of its objects; the peer is withdrawn and retried", now);
            return;
        }

        if (state.Failed)
        {
            _kernelStatus[key] = new PeerKernelStatus(PeerKernelState.Missing, "its lease cannot be programmed (see the agent's log)", now);
            return;
        }

        List<KernelObject> objects = plan.DesiredByOwner.TryGetValue(key, out List<KernelObject>? desired) ? desired : [];
        state.Programmed = objects;
        PlannedStep[] repairs = againstKernel ? [.. plan.Steps.Where(s => s.Target.Owner == key && s.Action != RepairAction.Deleted)] : [];
        if (repairs.Length == 0)
        {
            _kernelStatus[key] = new PeerKernelStatus(PeerKernelState.Programmed, null, now);
            return;
        }

        bool drifted = repairs.Any(s => s.Action == RepairAction.Fixed);
        string what = string.Join("; ", repairs.Select(s => $"{(s.Action == RepairAction.Fixed ? "fixed" : "re-added")} {s.Target.Description}"));
        _kernelStatus[key] = new PeerKernelStatus(
            drifted ? PeerKernelState.Drifted : PeerKernelState.Missing,
            $"{repairs.Length} of {objects.Count} objects {(drifted ? "differed" : "were missing")}: {what}",
            now);
    }

    /// <summary>Sends a plan as one batch, withdraws peers whose objects failed, and counts repairs.</summary>
    private async Task<ApplyOutcome> ExecuteAsync(ReconcilePlan plan, RepairCounting counting, CancellationToken cancellationToken)
    {
        if (plan.IsEmpty)
        {
            return ApplyOutcome.Clean;
        }

        var batch = new NetlinkBatch(plan.Steps.Count);
        foreach (PlannedStep step in plan.Steps)
        {
            Add(batch, step.Operation);
        }

        NetlinkBatchResult result = await Netlink.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
        var failedOwners = new HashSet<string>(StringComparer.Ordinal);
        int failedOperations = 0;
        for (int i = 0; i < plan.Steps.Count; i++)
        {
            PlannedStep step = plan.Steps[i];
            NetlinkException? error = result[i];
            if (error is null)
            {
                if (counting == RepairCounting.All || (counting == RepairCounting.FixesAndDeletes && step.Action != RepairAction.Added))
                {
                    Metrics.Repaired(step.Target.Kind, step.Action);
                }

                continue;
            }

            if (step.Action == RepairAction.Deleted && error.IsNotFound)
            {
                continue; // already gone: that is what we wanted
            }

            failedOperations++;
            Metrics.OperationFailed(step.Target.Kind);
            LogOperationFailed(Logger, BackendType, step.Action, step.Target.Description, error.Message);
            if (step.Action != RepairAction.Deleted && step.Target.Owner is { } owner)
            {
                failedOwners.Add(owner);
            }
        }

        if (failedOwners.Count > 0)
        {
            await WithdrawAsync(plan, failedOwners, cancellationToken).ConfigureAwait(false);
        }

        return new ApplyOutcome(failedOwners, failedOperations);
    }

    /// <summary>Deletes every object of the failed peers, so none is left half-programmed (flannel's rollback).</summary>
    private async Task WithdrawAsync(ReconcilePlan plan, HashSet<string> failedOwners, CancellationToken cancellationToken)
    {
        var objects = new List<KernelObject>();
        foreach (string owner in failedOwners)
        {
            Metrics.PeerFailed();
            LogPeerWithdrawn(Logger, BackendType, owner);
            if (plan.DesiredByOwner.TryGetValue(owner, out List<KernelObject>? owned))
            {
                objects.AddRange(owned);
            }
        }

        ReconcilePlan rollback = ReconcilePlan.Create([], objects);
        var batch = new NetlinkBatch(rollback.Steps.Count);
        foreach (PlannedStep step in rollback.Steps)
        {
            Add(batch, step.Operation);
        }

        if (batch.Count > 0)
        {
            NetlinkBatchResult result = await Netlink.ApplyAsync(batch, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < result.Count; i++)
            {
                if (result[i] is { IsNotFound: false } error)
                {
                    LogOperationFailed(Logger, BackendType, RepairAction.Deleted, rollback.Steps[i].Target.Description, error.Message);
                }
            }
        }
    }

    private static void Add(NetlinkBatch batch, NetlinkOperation operation)
    {
        switch (operation.Kind)
        {
            case NetlinkOperationKind.ReplaceRoute: batch.ReplaceRoute((RouteSpec)operation.Spec); break;
            case NetlinkOperationKind.DeleteRoute: batch.DeleteRoute((RouteSpec)operation.Spec); break;
            case NetlinkOperationKind.ReplaceNeighbor: batch.ReplaceNeighbor((NeighborSpec)operation.Spec); break;
            case NetlinkOperationKind.DeleteNeighbor: batch.DeleteNeighbor((NeighborSpec)operation.Spec); break;
            case NetlinkOperationKind.ReplaceFdbEntry: batch.ReplaceFdbEntry((FdbEntrySpec)operation.Spec); break;
            case NetlinkOperationKind.DeleteFdbEntry: batch.DeleteFdbEntry((FdbEntrySpec)operation.Spec); break;
            case NetlinkOperationKind.ReplaceNexthop: batch.ReplaceNexthop((NexthopSpec)operation.Spec); break;
            case NetlinkOperationKind.DeleteNexthop: batch.DeleteNexthop((uint)operation.Spec); break;
            default: throw new UnreachableException($"Unknown netlink operation {operation.Kind}.");
        }
    }

    private async Task PumpLeaseEventsAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, ChannelWriter<WorkItem> writer, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (IReadOnlyList<LeaseEvent> batch in leaseEvents.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                writer.TryWrite(WorkItem.ForEvents(batch, TimeProvider.GetTimestamp()));
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
        public Lease Lease { get; set; } = lease;

        /// <summary>The objects last programmed for the peer; null when unknown or withdrawn.</summary>
        public IReadOnlyList<KernelObject>? Programmed { get; set; }

        /// <summary>The peer could not be programmed; the next reconciliation retries it.</summary>
        public bool Failed { get; set; } = true;
    }

    private readonly record struct WorkItem(IReadOnlyList<LeaseEvent>? Events, long ReceivedTimestamp, NetlinkNotification? Notification, string? ResyncReason)
    {
        public static WorkItem ForEvents(IReadOnlyList<LeaseEvent> events, long timestamp) => new(events, timestamp, null, null);

        public static WorkItem ForNotification(NetlinkNotification notification) => new(null, 0, notification, null);

        public static WorkItem Resync(string reason) => new(null, 0, null, reason);
    }

    private sealed record ApplyOutcome(HashSet<string> FailedOwners, int FailedOperations)
    {
        public static ApplyOutcome Clean { get; } = new([], 0);

        public bool Succeeded => FailedOperations == 0;
    }

    [LoggerMessage(EventId = 5900, Level = LogLevel.Warning, Message = "{Backend}: kernel refused to {Action} {Object}: {Error}")]
    private static partial void LogOperationFailed(ILogger logger, string backend, RepairAction action, string @object, string error);

    [LoggerMessage(EventId = 5901, Level = LogLevel.Warning, Message = "{Backend}: peer {Lease} withdrawn after a failure; it will be retried")]
    private static partial void LogPeerWithdrawn(ILogger logger, string backend, string lease);

    [LoggerMessage(EventId = 5902, Level = LogLevel.Warning, Message = "{Backend}: skipping peer {Lease}: {Reason}")]
    private static partial void LogBadPeer(ILogger logger, string backend, string lease, string reason);

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
