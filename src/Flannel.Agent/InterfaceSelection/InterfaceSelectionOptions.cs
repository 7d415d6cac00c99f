using System.Net;

namespace Flannel.Agent.InterfaceSelection;

/// <summary>
/// How flanneld picks the underlay interface: its <c>--iface</c>, <c>--iface-regex</c>,
/// <c>--iface-can-reach</c>, <c>--public-ip</c> and <c>--public-ipv6</c> flags, and the enabled IP families.
/// </summary>
public sealed record InterfaceSelectionOptions
{
    /// <summary>
    /// <c>--iface</c> values, tried in order: each is an interface name or one of the interface's addresses.
    /// The first that matches wins.
    /// </summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];

    /// <summary>
    /// <c>--iface-regex</c> patterns, tried in order after <see cref="Interfaces"/>: each is matched first against
    /// the interfaces' addresses, then against their names.
    /// </summary>
    public IReadOnlyList<string> InterfaceRegexes { get; init; } = [];

    /// <summary><c>--iface-can-reach</c>: use the interface the kernel routes this address through.</summary>
    public IPAddress? CanReach { get; init; }

    /// <summary><c>--public-ip</c>: the IPv4 address peers use (it need not be local when an interface is named).</summary>
    public IPAddress? PublicIP { get; init; }

    /// <summary><c>--public-ipv6</c>: the IPv6 address peers use.</summary>
    public IPAddress? PublicIPv6 { get; init; }

    /// <summary>Whether the network has IPv4 enabled (an IPv4 interface address is required).</summary>
    public bool EnableIPv4 { get; init; } = true;

    /// <summary>Whether the network has IPv6 enabled (an IPv6 interface address is required).</summary>
    public bool EnableIPv6 { get; init; }

    /// <summary>True when no interface flag was given, so the default route (or the public IP's owner) decides.</summary>
    public bool IsAutomatic => Interfaces.Count == 0 && InterfaceRegexes.Count == 0 && CanReach is null;
}
