using System.Net;

namespace Flannel.Netlink.WireGuard;

// The typed model shared by both control paths (kernel generic netlink and the wireguard-go userspace
// protocol). It mirrors the uapi's two operations: a set carries only what should change, a get reports the
// whole device. Optional members are null when absent, so "not given" and "zero" stay different.

/// <summary>
/// A change to one WireGuard device (<c>WG_CMD_SET_DEVICE</c>, or <c>set=1</c> on the userspace socket): only
/// the members that are given change.
/// </summary>
public sealed record WireGuardDeviceUpdate
{
    /// <summary>The device name, e.g. <c>flannel-wg</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The private key to set; the zero key removes it.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>The UDP port to listen on; 0 lets the device choose.</summary>
    public ushort? ListenPort { get; init; }

    /// <summary>The firewall mark for outgoing packets; 0 disables it.</summary>
    public uint? FirewallMark { get; init; }

    /// <summary>Removes every peer not listed in <see cref="Peers"/> before applying them.</summary>
    public bool ReplacePeers { get; init; }

    /// <summary>Peers to add, change or remove.</summary>
    public IReadOnlyList<WireGuardPeerUpdate> Peers { get; init; } = [];
}

/// <summary>A change to one peer of a device, identified by its public key.</summary>
public sealed record WireGuardPeerUpdate
{
    /// <summary>The peer's public key (its identity on the device).</summary>
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>Removes the peer; every other member is then ignored.</summary>
    public bool Remove { get; init; }

    /// <summary>Changes the peer only if it exists (never creates it).</summary>
    public bool UpdateOnly { get; init; }

    /// <summary>The preshared key; the zero key removes it.</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>The peer's UDP endpoint (IPv4 or IPv6 address and port).</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Seconds between keepalives; 0 disables them.</summary>
    public ushort? PersistentKeepaliveInterval { get; init; }

    /// <summary>Removes the peer's current allowed IPs before adding <see cref="AllowedIps"/>.</summary>
    public bool ReplaceAllowedIps { get; init; }

    /// <summary>Networks routed to this peer and accepted from it.</summary>
    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];
}

/// <summary>A device as the kernel or wireguard-go reports it (<c>WG_CMD_GET_DEVICE</c>, <c>get=1</c>).</summary>
public sealed record WireGuardDevice
{
    /// <summary>The device name.</summary>
    public required string Name { get; init; }

    /// <summary>The interface index (the kernel reports it; the userspace protocol does not, so 0 there).</summary>
    public int Index { get; init; }

    /// <summary>The private key, or null when none is set.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>The public key derived from the private key (the kernel reports it; null from userspace).</summary>
    public WireGuardKey? PublicKey { get; init; }

    /// <summary>The UDP port the device listens on (0 before it is up).</summary>
    public ushort ListenPort { get; init; }

    /// <summary>The firewall mark, 0 when unset.</summary>
    public uint FirewallMark { get; init; }

    /// <summary>The peers, each once (peers split over several kernel messages are coalesced).</summary>
    public IReadOnlyList<WireGuardPeer> Peers { get; init; } = [];
}

/// <summary>A peer as a device reports it.</summary>
public sealed record WireGuardPeer
{
    /// <summary>The peer's public key.</summary>
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>The preshared key, or null when none is set (WireGuard reports the zero key).</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>The current endpoint, or null before one is known.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Seconds between keepalives, 0 when disabled.</summary>
    public ushort PersistentKeepaliveInterval { get; init; }

    /// <summary>When the last handshake completed, or null if none has.</summary>
    public DateTimeOffset? LastHandshake { get; init; }

    /// <summary>Bytes received from the peer.</summary>
    public ulong ReceivedBytes { get; init; }

    /// <summary>Bytes sent to the peer.</summary>
    public ulong TransmittedBytes { get; init; }

    /// <summary>The networks routed to the peer.</summary>
    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];

    /// <summary>The protocol version (1).</summary>
    public uint ProtocolVersion { get; init; }
}

/// <summary>
/// Reads and changes WireGuard devices. Implemented over generic netlink for the kernel module
/// and over wireguard-go's configuration socket for userspace devices;
/// backends depend on this interface and pick an implementation at run time.
/// </summary>
public interface IWireGuardControl : IAsyncDisposable
{
    /// <summary>How this instance talks to devices, for logs (e.g. <c>kernel (generic netlink family wireguard, id 27)</c>).</summary>
    string Description { get; }

    /// <summary>Returns the device named <paramref name="name"/>, or null when there is none.</summary>
    ValueTask<WireGuardDevice?> GetDeviceAsync(string name, CancellationToken cancellationToken);

    /// <summary>Applies <paramref name="update"/>; throws when the device refuses it.</summary>
    ValueTask SetDeviceAsync(WireGuardDeviceUpdate update, CancellationToken cancellationToken);
}
