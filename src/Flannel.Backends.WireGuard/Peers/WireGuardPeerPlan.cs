using System.Net;
using System.Net.Sockets;
using Flannel.Backends.WireGuard.Devices;
using Flannel.Configuration;
using Flannel.Netlink.WireGuard;
using Flannel.Subnets;

namespace Flannel.Backends.WireGuard.Peers;

// Design note: a WireGuard peer is identified on its device by its public key, and that is the only thing flannel's
// lease gives us to find it again, so the desired state is "per device, one peer per public key", built from the
// whole set of remote leases, and the observed state is the device's own peer list (WG_CMD_GET_DEVICE / get=1).
// Diffing the two gives one update per device: peers to remove (their lease went, or the node rotated its key) and
// peers to add or correct (missing, or another endpoint, allowed IPs, keepalive or PSK). Only the device's peers are
// ever touched, and the devices belong to the backend, so there is no ownership question as with routes.

/// <summary>A peer one device should have.</summary>
/// <param name="PublicKey">The peer's public key (its identity on the device).</param>
/// <param name="Endpoint">Where its packets go: <c>PublicIP:Port</c>, or <c>[PublicIPv6]:Port</c>.</param>
/// <param name="AllowedIps">The peer's subnet(s): routed to it and accepted from it.</param>
/// <param name="LeaseKey">The lease it comes from, for logs.</param>
internal sealed record DesiredPeer(WireGuardKey PublicKey, IPEndPoint Endpoint, IReadOnlyList<IPNetwork> AllowedIps, string LeaseKey);

/// <summary>Why a remote lease gives no peer on a device.</summary>
/// <param name="LeaseKey">The lease.</param>
/// <param name="Device">The device.</param>
/// <param name="Reason">What is wrong with it, naming the field and the value.</param>
internal sealed record RejectedLease(string LeaseKey, string Device, string Reason);

/// <summary>Builds the desired peers of each device from the remote leases and diffs a device against them.</summary>
internal sealed class WireGuardPeerPlan
{
    private readonly WireGuardConfig _config;
    private readonly NetworkConfig _network;
    private readonly ExternalInterface _external;
    private readonly WireGuardKey _ownPublicKey;

    public WireGuardPeerPlan(WireGuardConfig config, NetworkConfig network, ExternalInterface external, WireGuardKey ownPublicKey)
    {
        _config = config;
        _network = network;
        _external = external;
        _ownPublicKey = ownPublicKey;
    }

    /// <summary>
    /// The peers <paramref name="device"/> should have for <paramref name="leases"/> (remote leases only), keyed by
    /// public key, and the leases that give none. Leases are taken in key order, so when two leases claim the same
    /// public key the result does not depend on arrival order: the first keeps it, the other is rejected.
    /// </summary>
    public (Dictionary<WireGuardKey, DesiredPeer> Peers, List<RejectedLease> Rejected) Build(WireGuardDeviceSpec device, IEnumerable<Lease> leases)
    {
        var peers = new Dictionary<WireGuardKey, DesiredPeer>();
        var rejected = new List<RejectedLease>();
        foreach (Lease lease in leases.OrderBy(static l => l.Key, StringComparer.Ordinal))
        {
            DesiredPeer? peer;
            string? error;
            try
            {
                (peer, error) = PeerFor(device, lease);
            }
            catch (FormatException e)
            {
                (peer, error) = (null, e.Message);
            }

            if (error is not null)
            {
                rejected.Add(new RejectedLease(lease.Key, device.Name, error));
                continue;
            }

            if (peer is null)
            {
                continue; // nothing of this device's families
            }

            if (peer.PublicKey.Equals(_ownPublicKey))
            {
                rejected.Add(new RejectedLease(lease.Key, device.Name, $"PublicKey {peer.PublicKey} is this node's own public key"));
            }
            else if (peers.TryGetValue(peer.PublicKey, out DesiredPeer? first))
            {
                rejected.Add(new RejectedLease(lease.Key, device.Name, $"PublicKey {peer.PublicKey} is already the key of lease {first.LeaseKey}"));
            }
            else
            {
                peers.Add(peer.PublicKey, peer);
            }
        }

        return (peers, rejected);
    }

    /// <summary>
    /// The changes that make <paramref name="observed"/> (the device's peers now) equal to <paramref name="desired"/>:
    /// removals for peers nobody wants, and a full peer configuration (endpoint, keepalive, PSK, allowed IPs
    /// replaced) for each missing or differing peer.
    /// </summary>
    public IReadOnlyList<WireGuardPeerUpdate> Diff(IReadOnlyDictionary<WireGuardKey, DesiredPeer> desired, IReadOnlyList<WireGuardPeer> observed)
    {
        var changes = new List<WireGuardPeerUpdate>();
        var seen = new HashSet<WireGuardKey>();
        foreach (WireGuardPeer peer in observed)
        {
            seen.Add(peer.PublicKey);
            if (!desired.TryGetValue(peer.PublicKey, out DesiredPeer? want))
            {
                changes.Add(new WireGuardPeerUpdate { PublicKey = peer.PublicKey, Remove = true });
            }
            else if (!Matches(want, peer))
            {
                changes.Add(UpdateFor(want));
            }
        }

        foreach ((WireGuardKey key, DesiredPeer want) in desired)
        {
            if (!seen.Contains(key))
            {
                changes.Add(UpdateFor(want));
            }
        }

        return changes;
    }

    /// <summary>The configuration of one peer, as flannel's addPeer sets it: replace the allowed IPs, set everything else.</summary>
    public WireGuardPeerUpdate UpdateFor(DesiredPeer peer) => new()
    {
        PublicKey = peer.PublicKey,
        Endpoint = peer.Endpoint,
        PersistentKeepaliveInterval = _config.PersistentKeepaliveInterval,
        PresharedKey = _config.PresharedKey,
        ReplaceAllowedIps = true,
        AllowedIps = peer.AllowedIps,
    };

    private bool Matches(DesiredPeer want, WireGuardPeer have) =>
        want.Endpoint.Equals(have.Endpoint)
        && have.PersistentKeepaliveInterval == _config.PersistentKeepaliveInterval
        && Nullable.Equals(have.PresharedKey, _config.PresharedKey)
        && have.AllowedIps.Count == want.AllowedIps.Count
        && want.AllowedIps.All(have.AllowedIps.Contains);

    /// <summary>
    /// flannel's handleSubnetEvents, per device. Separate mode: <c>flannel-wg</c> gets the IPv4 subnet with
    /// BackendData's key at <c>PublicIP:Port</c>, <c>flannel-wg-v6</c> the IPv6 subnet with BackendV6Data's key at
    /// <c>[PublicIPv6]:Port</c>. Single-device modes: both subnets on one peer, keyed by BackendV6Data when the lease
    /// has IPv6 (flannel lets the v6 data win), reached at the address the mode picks.
    /// </summary>
    private (DesiredPeer? Peer, string? Error) PeerFor(WireGuardDeviceSpec device, Lease lease)
    {
        bool v4 = _network.EnableIPv4 && lease.Subnet is not null;
        bool v6 = _network.EnableIPv6 && lease.IPv6Subnet is not null;
        var allowed = new List<IPNetwork>(2);
        if (v4 && device.Carries(AddressFamily.InterNetwork))
        {
            allowed.Add(lease.Subnet!.Value);
        }

        if (v6 && device.Carries(AddressFamily.InterNetworkV6))
        {
            allowed.Add(lease.IPv6Subnet!.Value);
        }

        if (allowed.Count == 0)
        {
            return (null, null);
        }

        bool keyFromV6 = _config.Mode == WireGuardMode.Separate ? !device.Carries(AddressFamily.InterNetwork) : v6;
        string dataField = keyFromV6 ? "BackendV6Data" : "BackendData";
        if (!WireGuardLeaseData.TryParse(keyFromV6 ? lease.Attributes.BackendV6Data : lease.Attributes.BackendData, out WireGuardLeaseData? data, out string? error))
        {
            return (null, $"{dataField}: {error}");
        }

        // Writers that publish no Port (flannel before it had one) listen on the same port as we do.
        ushort port = data!.Port != 0 ? data.Port : device.ListenPort;
        IPAddress? address = EndpointAddress(device, lease, v4, v6, out string? addressError);
        return address is null ? (null, addressError) : (new DesiredPeer(data.PublicKey, new IPEndPoint(address, port), allowed, lease.Key), null);
    }

    private IPAddress? EndpointAddress(WireGuardDeviceSpec device, Lease lease, bool v4, bool v6, out string? error)
    {
        IPAddress? publicIP = v4 && lease.Attributes.PublicIP is { AddressFamily: AddressFamily.InterNetwork } ip && !ip.Equals(IPAddress.Any) ? ip : null;
        IPAddress? publicIPv6 = lease.Attributes.PublicIPv6 is { AddressFamily: AddressFamily.InterNetworkV6 } ip6 && !ip6.Equals(IPAddress.IPv6Any) ? ip6 : null;
        bool wantV6 = _config.Mode switch
        {
            WireGuardMode.Separate => !device.Carries(AddressFamily.InterNetwork),
            WireGuardMode.IPv4 => false,
            WireGuardMode.IPv6 => true,
            _ => SelectIPv6(publicIP, publicIPv6),
        };

        error = null;
        if (wantV6)
        {
            if (publicIPv6 is null)
            {
                error = $"PublicIPv6 '{lease.Attributes.PublicIPv6?.ToString() ?? "(none)"}' is not a usable IPv6 endpoint";
            }

            return publicIPv6;
        }

        if (publicIP is null)
        {
            error = $"PublicIP '{lease.Attributes.PublicIP}' is not a usable IPv4 endpoint";
        }

        return publicIP;
    }

    /// <summary>
    /// flannel's selectPublicEndpoint (auto mode): the only family the peer has; with both, IPv4 when the peer's IPv4
    /// address is public and we have an IPv4 address, else IPv6 when both sides' IPv6 addresses are public, else IPv4.
    /// </summary>
    private bool SelectIPv6(IPAddress? publicIP, IPAddress? publicIPv6)
    {
        if (publicIP is null || publicIPv6 is null)
        {
            return publicIP is null && publicIPv6 is not null;
        }

        if (!IsPrivate(publicIP) && _external.PublicIP is not null)
        {
            return false;
        }

        return !IsPrivate(publicIPv6) && _external.PublicIPv6 is { } own6 && !IsPrivate(own6);
    }

    /// <summary>Go's net.IP.IsPrivate: RFC 1918 for IPv4, fc00::/7 for IPv6.</summary>
    private static bool IsPrivate(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        return length == 4
            ? bytes[0] == 10 || (bytes[0] == 172 && (bytes[1] & 0xf0) == 16) || (bytes[0] == 192 && bytes[1] == 168)
            : (bytes[0] & 0xfe) == 0xfc;
    }
}
