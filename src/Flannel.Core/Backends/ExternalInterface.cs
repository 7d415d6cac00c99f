using System.Net;

namespace Flannel.Backends;

/// <summary>
/// The underlay interface chosen for flannel traffic (flanneld's <c>--iface</c> logic) and the addresses
/// peers reach this node on.
/// </summary>
public sealed record ExternalInterface
{
    /// <summary>The interface name, e.g. <c>eth0</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The interface index.</summary>
    public required int Index { get; init; }

    /// <summary>The interface MTU.</summary>
    public required int Mtu { get; init; }

    /// <summary>The interface's own IPv4 address (the vxlan local address).</summary>
    public IPAddress? IfaceAddress { get; init; }

    /// <summary>The interface's own IPv6 address.</summary>
    public IPAddress? IfaceIPv6Address { get; init; }

    /// <summary>The IPv4 address peers use (<c>--public-ip</c>, or the interface address).</summary>
    public IPAddress? PublicIP { get; init; }

    /// <summary>The IPv6 address peers use (<c>--public-ipv6</c>, or the interface address).</summary>
    public IPAddress? PublicIPv6 { get; init; }
}
