using System.Threading.Channels;
using Flannel.Backends.WireGuard.Devices;
using Flannel.Backends.WireGuard.Peers;
using Flannel.Backends.WireGuard.Userspace;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;
using Flannel.Reconciliation;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard;

// Design note: flannel's wireguard backend adds a peer when a lease arrives and removes it (by the public key in the
// removed lease) when it goes, and never looks at the device again. Here the devices are desired state like the other
// backends' kernel objects: every lease batch, every resync tick and every retry runs one pass that
//  1. repairs each device (recreated if it is gone or was recreated by someone, key/port/MTU reset, address, up
//     state and the route to the cluster network restored), and
//  2. diffs the device's peer list against the peers the current leases want, and applies the difference in one
//     update per device (stale peers removed, missing or differing peers set in full).
// A recreated device thus gets every peer replayed, a peer someone removed comes back, a peer whose node rotated its
// key is replaced (the old key is no longer wanted, so it goes). A device update the device refuses as a whole is
// retried peer by peer, so one bad peer never blocks the others; the failing peers are retried with backoff.
// The WireGuard peers are not rtnetlink objects, so this backend does not derive from ReconcilingNetwork (whose plan
// is rtnetlink routes, neighbours and FDB entries); it only shares its metrics.

/// <summary>The wireguard network on this node: its devices, its own addresses and one peer per remote lease.</summary>
internal sealed partial class WireGuardNetwork : INetwork, IAsyncDisposable
{
    private static readonly TimeSpan s_firstRetryDelay = TimeSpan.FromSeconds(1);

    private readonly WireGuardDeviceSet _devices;
    private readonly WireGuardPeerPlan _plan;
    private readonly NetworkConfig _networkConfig;
    private readonly TimeProvider _timeProvider;
    private readonly TimeSpan _resyncInterval;
    private readonly BackendMetrics _metrics;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly HashSet<RejectedLease> _reportedRejections = [];
    private readonly HashSet<(string Device, WireGuardKey Key)> _failingPeers = [];
    private Lease? _ownLease;
    private TimeSpan _retryDelay = s_firstRetryDelay;
    private long _completedPasses;

    public WireGuardNetwork(
        WireGuardDeviceSet devices,
        WireGuardPeerPlan plan,
        NetworkConfig networkConfig,
        LeaseAttributes attributes,
        TimeProvider timeProvider,
        TimeSpan resyncInterval,
        BackendMetrics metrics,
        ILogger logger)
    {
        _devices = devices;
        _plan = plan;
        _networkConfig = networkConfig;
        LeaseAttributes = attributes;
        _timeProvider = timeProvider;
        _resyncInterval = resyncInterval;
        _metrics = metrics;
        _logger = logger;
    }

    /// <inheritdoc />
    public LeaseAttributes LeaseAttributes { get; }

    /// <summary>The devices' MTU: the underlay MTU less WireGuard's 80 bytes.</summary>
    public int Mtu => _devices.Mtu;

    /// <summary>The devices and the control path in use.</summary>
    internal WireGuardDeviceSet Devices => _devices;

    /// <summary>Completed reconciliation passes (tests wait on it).</summary>
    internal long CompletedPasses => Interlocked.Read(ref _completedPasses);

    /// <inheritdoc />
    public async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _ownLease = ownLease;
            foreach (WireGuardDeviceSpec device in _devices.Devices)
            {
                await _devices.ConfigureAddressesAsync(device, ownLease, _networkConfig, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async Task RunAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(leaseEvents);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var work = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
        using ITimer ticker = _timeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(new WorkItem(null, "periodic", 0)),
            work.Writer,
            _resyncInterval,
            _resyncInterval);
        using ITimer retry = _timeProvider.CreateTimer(
            static state => ((ChannelWriter<WorkItem>)state!).TryWrite(new WorkItem(null, "retry", 0)),
            work.Writer,
            Timeout.InfiniteTimeSpan,
            Timeout.InfiniteTimeSpan);
        Task pump = PumpAsync(leaseEvents, work.Writer, stop.Token);
        try
        {
            await ProcessAsync(work.Reader, retry, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down leaves the devices and peers in place, like flanneld: traffic keeps flowing.
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await pump.ConfigureAwait(false);
        }
    }

    private async Task PumpAsync(IAsyncEnumerable<IReadOnlyList<LeaseEvent>> leaseEvents, ChannelWriter<WorkItem> writer, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (IReadOnlyList<LeaseEvent> batch in leaseEvents.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                writer.TryWrite(new WorkItem(batch, null, _timeProvider.GetTimestamp()));
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            writer.TryComplete();
        }
    }

    private async Task ProcessAsync(ChannelReader<WorkItem> reader, ITimer retry, CancellationToken cancellationToken)
    {
        bool started = false;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            string? reason = null;
            long firstReceived = 0;
            while (reader.TryRead(out WorkItem item))
            {
                if (item.Events is { } batch)
                {
                    started = true;
                    firstReceived = firstReceived == 0 ? item.Received : firstReceived;
                    Apply(batch);
                    reason ??= "leases";
                }
                else
                {
                    reason ??= item.Reason;
                }
            }

            // Nothing is reconciled before the first snapshot: an empty lease set would remove every peer.
            if (!started || reason is null)
            {
                continue;
            }

            bool ok = await ReconcileAsync(reason, cancellationToken).ConfigureAwait(false);
            if (firstReceived != 0)
            {
                _metrics.EventsProgrammed(_timeProvider.GetElapsedTime(firstReceived));
            }

            Interlocked.Increment(ref _completedPasses);
            if (ok)
            {
                _retryDelay = s_firstRetryDelay;
            }
            else
            {
                retry.Change(_retryDelay, Timeout.InfiniteTimeSpan);
                LogRetryScheduled(_logger, _retryDelay);
                _retryDelay = TimeSpan.FromTicks(Math.Min(_retryDelay.Ticks * 2, _resyncInterval.Ticks));
            }
        }
    }

    /// <summary>Applies lease events to the lease set (remote wireguard leases only).</summary>
    private void Apply(IReadOnlyList<LeaseEvent> events)
    {
        int before = _leases.Count;
        foreach (LeaseEvent leaseEvent in events)
        {
            Lease lease = leaseEvent.Lease;
            if (_ownLease is { } own && own.HasSameSubnets(lease))
            {
                continue;
            }

            if (leaseEvent.Type == LeaseEventType.Added
                && string.Equals(lease.Attributes.BackendType, WireGuardBackend.TypeName, StringComparison.Ordinal))
            {
                if (!_leases.ContainsKey(lease.Key))
                {
                    LogSubnetAdded(_logger, lease.Key, lease.Attributes.PublicIP);
                }

                _leases[lease.Key] = lease;
            }
            else
            {
                if (leaseEvent.Type == LeaseEventType.Added)
                {
                    LogIgnoringLease(_logger, lease.Key, lease.Attributes.BackendType ?? "(none)");
                }

                if (_leases.Remove(lease.Key))
                {
                    LogSubnetRemoved(_logger, lease.Key);
                }
            }
        }

        _metrics.PeersChanged(_leases.Count - before);
        _reportedRejections.RemoveWhere(r => !_leases.ContainsKey(r.LeaseKey));
    }

    /// <summary>One pass: repair every device, then make its peers equal to what the leases want.</summary>
    private async Task<bool> ReconcileAsync(string reason, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        bool ok = true;
        try
        {
            foreach (WireGuardDeviceSpec device in _devices.Devices)
            {
                try
                {
                    await RepairDeviceAsync(device, cancellationToken).ConfigureAwait(false);
                    ok &= await ReconcilePeersAsync(device, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NetlinkException or IOException or WireGuardUapiException or InvalidOperationException)
                {
                    LogDeviceFailed(_logger, device.Name, reason, e);
                    ok = false;
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        _metrics.Reconciled(reason, ok);
        return ok;
    }

    private async Task RepairDeviceAsync(WireGuardDeviceSpec device, CancellationToken cancellationToken)
    {
        string? drift = await _devices.FindDriftAsync(device, cancellationToken).ConfigureAwait(false);
        if (drift is not null)
        {
            LogRepairingDevice(_logger, device.Name, drift);
            _metrics.DeviceRecreated();
            await _devices.EnsureAsync(device, cancellationToken).ConfigureAwait(false);
        }

        if (_ownLease is { } own)
        {
            string? addressDrift = drift is null ? await _devices.FindAddressDriftAsync(device, own, _networkConfig, cancellationToken).ConfigureAwait(false) : "the device was repaired";
            if (addressDrift is not null)
            {
                if (drift is null)
                {
                    LogRepairingDevice(_logger, device.Name, addressDrift);
                }

                await _devices.ConfigureAddressesAsync(device, own, _networkConfig, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<bool> ReconcilePeersAsync(WireGuardDeviceSpec device, CancellationToken cancellationToken)
    {
        (Dictionary<WireGuardKey, DesiredPeer> desired, List<RejectedLease> rejected) = _plan.Build(device, _leases.Values);
        foreach (RejectedLease rejection in rejected)
        {
            // Once per lease and reason: a hostile or broken lease must not flood the log every resync.
            if (_reportedRejections.Add(rejection))
            {
                LogLeaseRejected(_logger, rejection.LeaseKey, rejection.Device, rejection.Reason);
            }
        }

        WireGuardDevice state = await _devices.Control.GetDeviceAsync(device.Name, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"wireguard: {device.Name} vanished while its peers were being reconciled");
        IReadOnlyList<WireGuardPeerUpdate> changes = _plan.Diff(desired, state.Peers);
        if (changes.Count == 0)
        {
            _failingPeers.RemoveWhere(p => p.Device == device.Name);
            return true;
        }

        try
        {
            await _devices.Control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device.Name, Peers = changes }, cancellationToken).ConfigureAwait(false);
            foreach (WireGuardPeerUpdate change in changes)
            {
                LogPeerChanged(change, desired, device.Name);
                _failingPeers.Remove((device.Name, change.PublicKey));
            }

            return true;
        }
        catch (Exception e) when (e is NetlinkException or IOException or WireGuardUapiException)
        {
            // The device refused the batch: apply the peers one at a time so the good ones still get through.
            LogBatchRefused(_logger, device.Name, changes.Count, e.Message);
        }

        bool ok = true;
        foreach (WireGuardPeerUpdate change in changes)
        {
            try
            {
                await _devices.Control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device.Name, Peers = [change] }, cancellationToken).ConfigureAwait(false);
                LogPeerChanged(change, desired, device.Name);
                _failingPeers.Remove((device.Name, change.PublicKey));
            }
            catch (Exception e) when (e is NetlinkException or IOException or WireGuardUapiException)
            {
                ok = false;
                _metrics.PeerFailed();
                if (_failingPeers.Add((device.Name, change.PublicKey)))
                {
                    string lease = desired.TryGetValue(change.PublicKey, out DesiredPeer? peer) ? peer.LeaseKey : "(stale peer)";
                    LogPeerFailed(_logger, change.PublicKey, lease, device.Name, e);
                }
            }
        }

        return ok;
    }

    private void LogPeerChanged(WireGuardPeerUpdate change, Dictionary<WireGuardKey, DesiredPeer> desired, string device)
    {
        if (change.Remove)
        {
            LogPeerRemoved(_logger, change.PublicKey, device);
        }
        else if (desired.TryGetValue(change.PublicKey, out DesiredPeer? peer))
        {
            string allowedIps = string.Join(",", peer.AllowedIps);
            LogPeerSet(_logger, change.PublicKey, device, peer.LeaseKey, peer.Endpoint, allowedIps);
        }
    }

    /// <summary>Releases the control sockets; the devices and peers stay (shutting down keeps traffic flowing).</summary>
    public async ValueTask DisposeAsync()
    {
        await _devices.DisposeAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    private readonly record struct WorkItem(IReadOnlyList<LeaseEvent>? Events, string? Reason, long Received);

    [LoggerMessage(EventId = 6310, Level = LogLevel.Information, Message = "wireguard: subnet added: {Lease} via {PublicIP}")]
    private static partial void LogSubnetAdded(ILogger logger, string lease, System.Net.IPAddress publicIP);

    [LoggerMessage(EventId = 6311, Level = LogLevel.Information, Message = "wireguard: subnet removed: {Lease}")]
    private static partial void LogSubnetRemoved(ILogger logger, string lease);

    [LoggerMessage(EventId = 6312, Level = LogLevel.Warning, Message = "wireguard: ignoring non-wireguard subnet {Lease}: type={BackendType}")]
    private static partial void LogIgnoringLease(ILogger logger, string lease, string backendType);

    [LoggerMessage(EventId = 6313, Level = LogLevel.Information, Message = "wireguard: peer {PublicKey} on {Device} for {Lease}: endpoint {Endpoint}, allowed ips {AllowedIps}")]
    private static partial void LogPeerSet(ILogger logger, WireGuardKey publicKey, string device, string lease, System.Net.IPEndPoint endpoint, string allowedIps);

    [LoggerMessage(EventId = 6314, Level = LogLevel.Information, Message = "wireguard: removed peer {PublicKey} from {Device}: no lease wants it")]
    private static partial void LogPeerRemoved(ILogger logger, WireGuardKey publicKey, string device);

    [LoggerMessage(EventId = 6315, Level = LogLevel.Warning, Message = "wireguard: lease {Lease} gives no peer on {Device}: {Reason}")]
    private static partial void LogLeaseRejected(ILogger logger, string lease, string device, string reason);

    [LoggerMessage(EventId = 6316, Level = LogLevel.Warning, Message = "wireguard: repairing {Device}: {Drift}")]
    private static partial void LogRepairingDevice(ILogger logger, string device, string drift);

    [LoggerMessage(EventId = 6317, Level = LogLevel.Warning, Message = "wireguard: {Device} refused {Count} peer change(s) at once ({Error}); applying them one by one")]
    private static partial void LogBatchRefused(ILogger logger, string device, int count, string error);

    [LoggerMessage(EventId = 6318, Level = LogLevel.Error, Message = "wireguard: peer {PublicKey} ({Lease}) on {Device} failed; retrying with backoff")]
    private static partial void LogPeerFailed(ILogger logger, WireGuardKey publicKey, string lease, string device, Exception error);

    [LoggerMessage(EventId = 6319, Level = LogLevel.Error, Message = "wireguard: reconciling {Device} ({Reason}) failed; retrying with backoff")]
    private static partial void LogDeviceFailed(ILogger logger, string device, string reason, Exception error);

    [LoggerMessage(EventId = 6320, Level = LogLevel.Information, Message = "wireguard: reconciling again in {Delay}")]
    private static partial void LogRetryScheduled(ILogger logger, TimeSpan delay);
}
