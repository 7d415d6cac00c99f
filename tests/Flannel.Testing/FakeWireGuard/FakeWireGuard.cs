using System.Net;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;

namespace Flannel.Testing.FakeNetlink;

/// <summary>One call made to a <see cref="FakeWireGuard"/>.</summary>
/// <param name="Name"><c>GetDevice</c> or <c>SetDevice</c>.</param>
/// <param name="Device">The device name.</param>
/// <param name="Update">The update, for <c>SetDevice</c>.</param>
public sealed record FakeWireGuardCall(string Name, string Device, WireGuardDeviceUpdate? Update);

/// <summary>
/// An in-memory <see cref="IWireGuardControl"/> with WireGuard's configuration rules, so a backend's WireGuard peers
/// are tested without root, a kernel module or wireguard-go. It stands for either control path: kernel WireGuard
/// (generic netlink) or wireguard-go (the UAPI socket). A shared conformance suite runs the same cases against it and
/// against a real wireguard-go.
/// </summary>
/// <remarks>
/// Rules kept: a set changes only what it names; REPLACE_PEERS drops peers not listed; a peer is identified by its
/// public key; <c>remove</c> deletes it; <c>update_only</c> never creates one; a zero preshared key removes it;
/// REPLACE_ALLOWEDIPS clears the peer's networks first; and an allowed IP belongs to at most one peer of a device
/// (cryptokey routing), so giving it to another peer takes it away from the first. A device exists while a link of
/// its name exists in the <see cref="FakeNetlink"/> it is bound to (a kernel wireguard link, or wireguard-go's TUN
/// device); when the link goes, the device's configuration goes with it, as in the kernel.
/// </remarks>
public sealed class FakeWireGuard : IWireGuardControl
{
    private readonly object _sync = new();
    private readonly FakeNetlink? _netlink;
    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private readonly List<FakeWireGuardCall> _calls = [];
    private readonly List<(Func<FakeWireGuardCall, bool> Match, Exception Error)> _faults = [];

    /// <summary>Creates a fake whose devices exist while <paramref name="netlink"/> has a link of their name; with no netlink, <see cref="CreateDevice"/> and <see cref="DeleteDevice"/> decide.</summary>
    public FakeWireGuard(FakeNetlink? netlink = null, string description = "fake WireGuard")
    {
        _netlink = netlink;
        Description = description;
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>Every call so far, in order.</summary>
    public IReadOnlyList<FakeWireGuardCall> Calls
    {
        get
        {
            lock (_sync)
            {
                return _calls.ToList();
            }
        }
    }

    /// <summary>True once <see cref="DisposeAsync"/> ran.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Creates a device explicitly (for a fake not bound to a <see cref="FakeNetlink"/>).</summary>
    public void CreateDevice(string name)
    {
        lock (_sync)
        {
            _devices.TryAdd(name, new DeviceState(LinkIndexOf(name)));
        }
    }

    /// <summary>Deletes a device and its configuration (for a fake not bound to a <see cref="FakeNetlink"/>).</summary>
    public void DeleteDevice(string name)
    {
        lock (_sync)
        {
            _devices.Remove(name);
        }
    }

    /// <summary>Removes a peer behind the backend's back (someone ran <c>wg set DEV peer KEY remove</c>).</summary>
    public bool RemovePeerBehindBack(string device, WireGuardKey publicKey)
    {
        lock (_sync)
        {
            return TryGetDevice(device) is { } state && state.Peers.Remove(publicKey);
        }
    }

    /// <summary>
    /// Makes matching calls throw <paramref name="error"/> until the returned handle is disposed, e.g. a
    /// <see cref="NetlinkException"/> for a peer the kernel refuses.
    /// </summary>
    public IDisposable InjectFault(Func<FakeWireGuardCall, bool> match, Exception error)
    {
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(error);
        var fault = (match, error);
        lock (_sync)
        {
            _faults.Add(fault);
        }

        return new Fault(this, fault);
    }

    /// <summary>The device as <see cref="GetDeviceAsync"/> would report it, or null.</summary>
    public WireGuardDevice? Snapshot(string name)
    {
        lock (_sync)
        {
            return TryGetDevice(name) is { } state ? state.ToDevice(name) : null;
        }
    }

    /// <inheritdoc />
    public ValueTask<WireGuardDevice?> GetDeviceAsync(string name, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_sync)
        {
            Record(new FakeWireGuardCall("GetDevice", name, null));
            return ValueTask.FromResult(TryGetDevice(name)?.ToDevice(name));
        }
    }

    /// <inheritdoc />
    public ValueTask SetDeviceAsync(WireGuardDeviceUpdate update, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_sync)
        {
            Record(new FakeWireGuardCall("SetDevice", update.Name, update));
            DeviceState state = TryGetDevice(update.Name)
                ?? throw new NetlinkException("WG_CMD_SET_DEVICE", 19, "ENODEV", 0, null, null, $"device {update.Name}");
            state.Apply(update);
            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        IsDisposed = true;
        return ValueTask.CompletedTask;
    }

    private void Record(FakeWireGuardCall call)
    {
        _calls.Add(call);
        foreach ((Func<FakeWireGuardCall, bool> match, Exception error) in _faults)
        {
            if (match(call))
            {
                throw error;
            }
        }
    }

    private int LinkIndexOf(string name) => _netlink?.FindLink(name)?.Index ?? 0;

    /// <summary>The device's state, dropped (and recreated empty) when its link is gone or was recreated.</summary>
    private DeviceState? TryGetDevice(string name)
    {
        if (_netlink is null)
        {
            return _devices.GetValueOrDefault(name);
        }

        int index = LinkIndexOf(name);
        if (index == 0)
        {
            _devices.Remove(name);
            return null;
        }

        if (!_devices.TryGetValue(name, out DeviceState? state) || state.LinkIndex != index)
        {
            state = new DeviceState(index);
            _devices[name] = state;
        }

        return state;
    }

    private sealed class Fault(FakeWireGuard owner, (Func<FakeWireGuardCall, bool>, Exception) rule) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._sync)
            {
                owner._faults.Remove(rule);
            }
        }
    }

    private sealed class DeviceState(int linkIndex)
    {
        public int LinkIndex { get; } = linkIndex;

        public WireGuardKey? PrivateKey { get; set; }

        public ushort ListenPort { get; set; }

        public uint FirewallMark { get; set; }

        /// <summary>Peers in insertion order, as WireGuard lists them.</summary>
        public Dictionary<WireGuardKey, PeerState> Peers { get; } = [];

        public void Apply(WireGuardDeviceUpdate update)
        {
            if (update.PrivateKey is { } key)
            {
                PrivateKey = key.IsZero ? null : key;
            }

            if (update.ListenPort is { } port)
            {
                ListenPort = port;
            }

            if (update.FirewallMark is { } mark)
            {
                FirewallMark = mark;
            }

            if (update.ReplacePeers)
            {
                Peers.Clear();
            }

            foreach (WireGuardPeerUpdate peer in update.Peers)
            {
                if (peer.Remove)
                {
                    Peers.Remove(peer.PublicKey);
                    continue;
                }

                if (!Peers.TryGetValue(peer.PublicKey, out PeerState? state))
                {
                    if (peer.UpdateOnly)
                    {
                        continue;
                    }

                    state = new PeerState();
                    Peers.Add(peer.PublicKey, state);
                }

                if (peer.PresharedKey is { } psk)
                {
                    state.PresharedKey = psk.IsZero ? null : psk;
                }

                if (peer.Endpoint is { } endpoint)
                {
                    state.Endpoint = endpoint;
                }

                if (peer.PersistentKeepaliveInterval is { } keepalive)
                {
                    state.Keepalive = keepalive;
                }

                if (peer.ReplaceAllowedIps)
                {
                    state.AllowedIps.Clear();
                }

                foreach (IPNetwork network in peer.AllowedIps)
                {
                    // Cryptokey routing: a network routes to one peer of the device only.
                    foreach (PeerState other in Peers.Values)
                    {
                        other.AllowedIps.Remove(network);
                    }

                    state.AllowedIps.Add(network);
                }
            }
        }

        public WireGuardDevice ToDevice(string name) => new()
        {
            Name = name,
            Index = LinkIndex,
            PrivateKey = PrivateKey,
            PublicKey = null,
            ListenPort = ListenPort,
            FirewallMark = FirewallMark,
            Peers = Peers.Select(p => new WireGuardPeer
            {
                PublicKey = p.Key,
                PresharedKey = p.Value.PresharedKey,
                Endpoint = p.Value.Endpoint,
                PersistentKeepaliveInterval = p.Value.Keepalive,
                AllowedIps = p.Value.AllowedIps.ToList(),
                ProtocolVersion = 1,
            }).ToList(),
        };
    }

    private sealed class PeerState
    {
        public WireGuardKey? PresharedKey { get; set; }

        public IPEndPoint? Endpoint { get; set; }

        public ushort Keepalive { get; set; }

        public List<IPNetwork> AllowedIps { get; } = [];
    }
}
