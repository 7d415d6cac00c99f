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

    /// <summary>
    /// What most likely breaks this overlay while the underlay still works, in a sentence fragment the agent logs
    /// after "likely causes:" when a peer answers over the underlay but not over the overlay, e.g. <c>the vxlan UDP
    /// port (8472) filtered between the nodes, an MTU mismatch on the path, or a missing or stale neighbour/FDB
    /// entry</c>. Name the backend's port, so the operator knows what to look for in the firewall.
    /// </summary>
    string OverlayFailureCauses => "the overlay's encapsulation filtered between the nodes, or an MTU mismatch on the path";
}
