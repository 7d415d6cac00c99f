using System.Net;
using System.Net.Sockets;
using Flannel.Backends.WireGuard.Devices;
using Flannel.Configuration;
using Flannel.Netlink.WireGuard;
using Flannel.Subnets;

namespace Flannel.Backends.WireGuard.Peers;

/// <summary>A peer one device should have for one lease.</summary>
/// <param name="PublicKey">The peer's public key (its identity on the device).</param>
/// <param name="DataField">The lease field the key came from (<c>BackendData</c> or <c>BackendV6Data</c>), for errors.</param>
/// <param name="Content">Endpoint (<c>PublicIP:Port</c>, or <c>[PublicIPv6]:Port</c>), allowed IPs, keepalive and PSK.</param>
internal sealed record DesiredPeer(WireGuardKey PublicKey, string DataField, WireGuardPeerContent Content);

/// <summary>Builds the peer each device should have for a remote lease, as flannel's handleSubnetEvents does.</summary>
internal sealed class WireGuardPeerBuilder
{
    private readonly WireGuardConfig _config;
    private readonly NetworkConfig _network;
    private readonly ExternalInterface _external;

    public WireGuardPeerBuilder(WireGuardConfig config, NetworkConfig network, ExternalInterface external)
    {
        _config = config;
        _network = network;
        _external = external;
    }

    /// <summary>
    /// flannel's handleSubnetEvents, per device. Separate mode: <c>flannel-wg</c> gets the IPv4 subnet with
    /// BackendData's key at <c>PublicIP:Port</c>, <c>flannel-wg-v6</c> the IPv6 subnet with BackendV6Data's key at
    /// <c>[PublicIPv6]:Port</c>. Single-device modes: both subnets on one peer, keyed by BackendV6Data when the lease
    /// has IPv6 (flannel lets the v6 data win), reached at the address the mode picks.
    /// </summary>
    /// <returns>The peer, or (null, null) when the lease has nothing of the device's families, or (null, error) naming the field and the value.</returns>
    public (DesiredPeer? Peer, string? Error) PeerFor(WireGuardDeviceSpec device, Lease lease)
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
        if (address is null)
        {
            return (null, addressError);
        }

        var content = new WireGuardPeerContent(new IPEndPoint(address, port), allowed, _config.PersistentKeepaliveInterval, _config.PresharedKey);
        return (new DesiredPeer(data.PublicKey, dataField, content), null);
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
