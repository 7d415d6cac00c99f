using Flannel.Backends.WireGuard.Devices;
using Flannel.Backends.WireGuard.Peers;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;
using Flannel.Reconciliation;
using Flannel.Subnets;
using Microsoft.Extensions.Logging;

namespace Flannel.Backends.WireGuard;

// Design note: flannel's wireguard backend adds a peer when a lease arrives and removes it (by the public key in the
// removed lease) when it goes, and never looks at the device again. Here the peers are desired state on the public
// reconciliation engine, like the other backends' routes: each remote lease wants one WireGuardPeerObject per device
// (keyed by device and public key), the device's own peer list is the observed state, and WireGuardPeerApplier drives
// the chosen control path. The engine's event path, resync ticks, per-peer withdraw, retry backoff and per-peer kernel
// state (programmed / missing / drifted, for `flanneld status`) are thus the same as for vxlan and host-gw. What is
// per node rather than per peer - the device itself, its key, port, MTU, address, up state and the route to the
// cluster network - is repaired before each full pass (PrepareReconcileAsync), so a recreated device is found empty
// by the dump that follows and gets every peer replayed.

/// <summary>The wireguard network on this node: its devices, its own addresses and one peer per remote lease.</summary>
internal sealed partial class WireGuardNetwork : ReconcilingNetwork, IOverlayNetwork, IAsyncDisposable
{
    private readonly WireGuardDeviceSet _devices;
    private readonly WireGuardPeerBuilder _peers;
    private readonly WireGuardKey _ownPublicKey;
    private readonly NetworkConfig _networkConfig;
    private readonly WireGuardPeerApplier _applier;

    // Which lease holds a public key on a device. Cryptokey routing hands a key's traffic to whoever configured it
    // last, so a lease claiming another node's key must never replace that node's peer: the holder keeps the key for
    // as long as its lease still publishes it, and the claimant is refused (and retried with backoff, like a peer the
    // kernel refuses). Only the engine's one loop touches it.
    private readonly Dictionary<(string Device, WireGuardKey Key), string> _keyHolders = [];

    public WireGuardNetwork(
        INetlink netlink,
        WireGuardDeviceSet devices,
        WireGuardPeerBuilder peers,
        WireGuardKey ownPublicKey,
        NetworkConfig networkConfig,
        LeaseAttributes attributes,
        TimeProvider timeProvider,
        TimeSpan resyncInterval,
        BackendMetrics metrics,
        ILogger logger)
        : base(WireGuardBackend.TypeName, netlink, timeProvider, resyncInterval, metrics, logger)
    {
        _devices = devices;
        _peers = peers;
        _ownPublicKey = ownPublicKey;
        _networkConfig = networkConfig;
        LeaseAttributes = attributes;
        _applier = new WireGuardPeerApplier(() => _devices.Control, logger);
    }

    /// <inheritdoc />
    public override LeaseAttributes LeaseAttributes { get; }

    /// <summary>The devices' MTU: the underlay MTU less WireGuard's 80 bytes.</summary>
    public override int Mtu => _devices.Mtu;

    /// <summary><c>flannel-wg</c>, and <c>flannel-wg-v6</c> in separate mode with IPv6.</summary>
    /// <remarks>
    /// The overlay address of a peer is the interface default, the first address of its subnet: flannel's
    /// wireguard backend gives each device <c>lease.Subnet.IP/32</c> (<c>lease.IPv6Subnet.IP/128</c>), see
    /// <c>wgDevice.Configure</c>/<c>ConfigureV6</c>, and <see cref="WireGuardDeviceSet.ConfigureAddressesAsync"/> does the same.
    /// </remarks>
    public IReadOnlyList<string> DeviceNames => [.. _devices.Devices.Select(d => d.Name)];

    /// <inheritdoc />
    public string OverlayFailureCauses =>
        $"the WireGuard UDP port ({string.Join("/", _devices.Devices.Select(d => d.ListenPort))}) filtered between the nodes, an MTU mismatch on the path, or a missing or stale WireGuard peer (public key, endpoint or allowed IPs)";

    /// <summary>The devices and the control path in use.</summary>
    internal WireGuardDeviceSet Devices => _devices;

    /// <inheritdoc />
    protected override NetlinkNotificationGroups NotificationGroups => NetlinkNotificationGroups.Link;

    /// <inheritdoc />
    public override async ValueTask ConfigureLeaseAsync(Lease ownLease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLease);
        await KernelGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            OwnLease = ownLease;
            foreach (WireGuardDeviceSpec device in _devices.Devices)
            {
                await _devices.ConfigureAddressesAsync(device, ownLease, _networkConfig, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            KernelGate.Release();
        }
    }

    /// <inheritdoc />
    protected override bool IsForThisBackend(Lease lease)
    {
        if (string.Equals(lease.Attributes.BackendType, WireGuardBackend.TypeName, StringComparison.Ordinal))
        {
            return true;
        }

        LogIgnoringLease(Logger, lease.Key, lease.Attributes.BackendType ?? "(none)");
        return false;
    }

    /// <inheritdoc />
    protected override ValueTask<IReadOnlyList<StateObject>> BuildDesiredAsync(Lease lease, string owner, CancellationToken cancellationToken)
    {
        var objects = new List<StateObject>(_devices.Devices.Count);
        foreach (WireGuardDeviceSpec device in _devices.Devices)
        {
            (DesiredPeer? peer, string? error) = _peers.PeerFor(device, lease);
            if (error is not null)
            {
                throw new InvalidOperationException($"no peer on {device.Name}: {error}");
            }

            if (peer is null)
            {
                continue; // nothing of this device's families
            }

            if (peer.PublicKey.Equals(_ownPublicKey))
            {
                throw new InvalidOperationException($"no peer on {device.Name}: {peer.DataField}.PublicKey {peer.PublicKey} is this node's own public key");
            }

            if (_keyHolders.TryGetValue((device.Name, peer.PublicKey), out string? holder) && holder != owner && StillHolds(holder, device, peer.PublicKey))
            {
                throw new InvalidOperationException($"no peer on {device.Name}: {peer.DataField}.PublicKey {peer.PublicKey} is already the key of lease {holder}");
            }

            _keyHolders[(device.Name, peer.PublicKey)] = owner;
            objects.Add(WireGuardPeerObject.Desired(device.Name, peer.PublicKey, peer.Content, owner));
        }

        return ValueTask.FromResult<IReadOnlyList<StateObject>>(objects);
    }

    /// <summary>True while <paramref name="holder"/>'s lease is wanted and still publishes <paramref name="key"/> for <paramref name="device"/>.</summary>
    private bool StillHolds(string holder, WireGuardDeviceSpec device, WireGuardKey key)
    {
        // A linear search, but only when two leases claim one key (hostile or broken), never per ordinary peer.
        Lease? lease = DesiredLeases.FirstOrDefault(l => l.Key == holder);
        return lease is not null && _peers.PeerFor(device, lease).Peer is { } peer && peer.PublicKey.Equals(key);
    }

    /// <inheritdoc />
    protected override async ValueTask<IReadOnlyList<StateObject>> DumpOwnedAsync(CancellationToken cancellationToken)
    {
        // Forget the key claims of leases that are gone, so the table stays as large as the lease set.
        var wanted = DesiredLeases.Select(static l => l.Key).ToHashSet(StringComparer.Ordinal);
        foreach (KeyValuePair<(string Device, WireGuardKey Key), string> claim in _keyHolders.ToArray())
        {
            if (!wanted.Contains(claim.Value))
            {
                _keyHolders.Remove(claim.Key);
            }
        }

        // The devices belong to the backend, so every peer on them is ours to keep or remove.
        var observed = new List<StateObject>();
        foreach (WireGuardDeviceSpec device in _devices.Devices)
        {
            WireGuardDevice state = await _devices.Control.GetDeviceAsync(device.Name, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"wireguard: {device.Name} vanished while its peers were being read");
            observed.AddRange(state.Peers.Select(p => WireGuardPeerObject.Observed(device.Name, p)));
        }

        return observed;
    }

    /// <inheritdoc />
    protected override IStateApplier GetApplier(StateObjectKind kind) =>
        kind == WireGuardPeerKind.Peer ? _applier : base.GetApplier(kind);

    /// <inheritdoc />
    protected override string? ResyncReasonFor(NetlinkNotification notification)
    {
        ArgumentNullException.ThrowIfNull(notification);
        return notification switch
        {
            { Kind: NetlinkNotificationKind.LinkDeleted, Link: { } link } when _devices.Devices.Any(d => d.Name == link.Name || _devices.IndexOf(d.Name) == link.Index) => "device-deleted",
            { Kind: NetlinkNotificationKind.LinkAddedOrChanged, Link: { IsUp: false } link } when _devices.Devices.Any(d => _devices.IndexOf(d.Name) == link.Index) => "device-down",
            _ => base.ResyncReasonFor(notification),
        };
    }

    /// <summary>
    /// Repairs every device before a full pass: recreated if it is gone or was recreated by someone, key, port and MTU
    /// reset, address, up state and the route to the cluster network restored. The peers are left to the pass.
    /// </summary>
    protected override async ValueTask PrepareReconcileAsync(CancellationToken cancellationToken)
    {
        foreach (WireGuardDeviceSpec device in _devices.Devices)
        {
            string? drift = await _devices.FindDriftAsync(device, cancellationToken).ConfigureAwait(false);
            if (drift is not null)
            {
                LogRepairingDevice(Logger, device.Name, drift);
                Metrics.DeviceRecreated();
                await _devices.EnsureAsync(device, cancellationToken).ConfigureAwait(false);
            }

            if (OwnLease is not { } own)
            {
                continue;
            }

            string? addressDrift = drift is null
                ? await _devices.FindAddressDriftAsync(device, own, _networkConfig, cancellationToken).ConfigureAwait(false)
                : "the device was repaired";
            if (addressDrift is not null)
            {
                if (drift is null)
                {
                    LogRepairingDevice(Logger, device.Name, addressDrift);
                }

                await _devices.ConfigureAddressesAsync(device, own, _networkConfig, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Releases the control sockets; the devices and peers stay (shutting down keeps traffic flowing).</summary>
    public async ValueTask DisposeAsync() => await _devices.DisposeAsync().ConfigureAwait(false);

    [LoggerMessage(EventId = 6312, Level = LogLevel.Warning, Message = "wireguard: ignoring non-wireguard subnet {Lease}: type={BackendType}")]
    private static partial void LogIgnoringLease(ILogger logger, string lease, string backendType);

    [LoggerMessage(EventId = 6316, Level = LogLevel.Warning, Message = "wireguard: repairing {Device}: {Drift}")]
    private static partial void LogRepairingDevice(ILogger logger, string device, string drift);
}
