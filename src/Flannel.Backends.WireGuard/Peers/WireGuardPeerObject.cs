using System.Net;
using Flannel.Netlink.WireGuard;
using Flannel.Reconciliation;

namespace Flannel.Backends.WireGuard.Peers;

// Design note: a WireGuard peer is identified on its device by its public key, and that is the only thing flannel's
// lease gives us to find it again. So the backend hands the reconciliation engine one state object per (device,
// public key): desired ones built from the remote leases, observed ones read from the device (WG_CMD_GET_DEVICE, or
// wireguard-go's get=1). The engine diffs them like routes: a peer nobody wants any more (its lease went, or its node
// rotated its key) is removed, a missing one (someone ran `wg set … remove`, or the device was recreated) is added,
// one with another endpoint, allowed IPs, keepalive or PSK is set again in full. Peers are created before anything
// else of a plan and deleted after everything else, so a route never points into a device without its peer.

/// <summary>The WireGuard peer state-object kind.</summary>
internal static class WireGuardPeerKind
{
    /// <summary><c>wireguard-peer</c>: created at 50 (before rtnetlink objects), deleted at 500 (after them).</summary>
    public static StateObjectKind Peer { get; } = new("wireguard-peer", CreateOrder: 50, DeleteOrder: 500);
}

/// <summary>What a set of a peer changes: where it is reached, what it may send and receive, keepalive and PSK.</summary>
/// <param name="Endpoint">Where its packets go; null when the device has not learned one (observed only).</param>
/// <param name="AllowedIps">The peer's subnet(s): routed to it and accepted from it.</param>
/// <param name="PersistentKeepaliveInterval">Seconds between keepalives; 0 is off.</param>
/// <param name="PresharedKey">The preshared key, or null for none.</param>
internal sealed record WireGuardPeerContent(IPEndPoint? Endpoint, IReadOnlyList<IPNetwork> AllowedIps, ushort PersistentKeepaliveInterval, WireGuardKey? PresharedKey)
    : IStateContent
{
    /// <summary>True when the device's peer already has this endpoint, keepalive, PSK and exactly these allowed IPs.</summary>
    public bool IsSatisfiedBy(IStateContent observed) =>
        observed is WireGuardPeerContent have
        && Equals(Endpoint, have.Endpoint)
        && PersistentKeepaliveInterval == have.PersistentKeepaliveInterval
        && Nullable.Equals(PresharedKey, have.PresharedKey)
        && AllowedIps.Count == have.AllowedIps.Count
        && AllowedIps.All(have.AllowedIps.Contains);
}

/// <summary>One peer of one WireGuard device, keyed by (device, public key).</summary>
internal sealed class WireGuardPeerObject : StateObject
{
    // The description is made when a log line asks for it (Describe), not kept per peer.
    private WireGuardPeerObject(string device, WireGuardKey publicKey, WireGuardPeerContent content, string? owner)
        : base(new StateObjectKey(WireGuardPeerKind.Peer, (device, publicKey)), content, owner)
    {
        Device = device;
        PublicKey = publicKey;
        Peer = content;
    }

    /// <summary>The device the peer belongs to.</summary>
    public string Device { get; }

    /// <summary>The peer's public key (its identity on the device).</summary>
    public WireGuardKey PublicKey { get; }

    /// <summary>The peer's configuration.</summary>
    public WireGuardPeerContent Peer { get; }

    /// <summary>The peer <paramref name="owner"/>'s lease wants on <paramref name="device"/>.</summary>
    public static WireGuardPeerObject Desired(string device, WireGuardKey publicKey, WireGuardPeerContent content, string owner) =>
        new(device, publicKey, content, owner);

    /// <summary>A peer found on <paramref name="device"/>.</summary>
    public static WireGuardPeerObject Observed(string device, WireGuardPeer peer) =>
        new(device, peer.PublicKey, new WireGuardPeerContent(peer.Endpoint, peer.AllowedIps, peer.PersistentKeepaliveInterval, peer.PresharedKey), owner: null);

    /// <summary>A desired peer with its endpoint and allowed IPs; a peer found on the device by its key.</summary>
    protected override string Describe() => Owner is null
        ? $"wireguard peer {PublicKey} on {Device}"
        : $"wireguard peer {PublicKey} on {Device} (endpoint {Peer.Endpoint}, allowed ips {string.Join(",", Peer.AllowedIps)})";

    /// <summary>
    /// The device update for <paramref name="action"/>: a removal by public key, or the full configuration as
    /// flannel's addPeer sets it (allowed IPs replaced, everything else set).
    /// </summary>
    public WireGuardPeerUpdate UpdateFor(RepairAction action) => action == RepairAction.Deleted
        ? new WireGuardPeerUpdate { PublicKey = PublicKey, Remove = true }
        : new WireGuardPeerUpdate
        {
            PublicKey = PublicKey,
            Endpoint = Peer.Endpoint,
            PersistentKeepaliveInterval = Peer.PersistentKeepaliveInterval,
            PresharedKey = Peer.PresharedKey,
            ReplaceAllowedIps = true,
            AllowedIps = Peer.AllowedIps,
        };
}
