using System.Net;
using System.Net.Sockets;
using Flannel.Subnets;

namespace Flannel.Backends;

/// <summary>
/// Implemented by an <see cref="INetwork"/> whose pod traffic to peers goes through a device of its own (vxlan's
/// <c>flannel.1</c>, a WireGuard device). The agent then probes every peer over that device as well as over the
/// underlay, and the status names the device. host-gw, which routes pod traffic over the underlay, does not
/// implement it.
/// </summary>
public interface IOverlayNetwork
{
    /// <summary>The backend's devices on this node, e.g. <c>flannel.1</c> (and <c>flannel-v6.1</c> with IPv6).</summary>
    IReadOnlyList<string> DeviceNames { get; }

    /// <summary>
    /// The address <paramref name="lease"/>'s node answers on over the overlay, or null when it has none in
    /// <paramref name="family"/>. The default is flannel's convention: the device holds the first address of the
    /// node's subnet (10.244.2.0 for 10.244.2.0/24).
    /// </summary>
    IPAddress? OverlayAddressOf(Lease lease, AddressFamily family)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return (family == AddressFamily.InterNetworkV6 ? lease.IPv6Subnet : lease.Subnet)?.BaseAddress;
    }
}
