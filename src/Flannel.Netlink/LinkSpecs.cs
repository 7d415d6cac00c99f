using System.Net;

namespace Flannel.Netlink;

/// <summary>The wanted vxlan device. Optional members left null are not sent, so the kernel default applies.</summary>
public sealed record VxlanLinkSpec
{
    /// <summary>Device name, e.g. <c>flannel.1</c>.</summary>
    public required string Name { get; init; }

    /// <summary>VXLAN network identifier (IFLA_VXLAN_ID).</summary>
    public required uint Vni { get; init; }

    /// <summary>Local tunnel address (IFLA_VXLAN_LOCAL or LOCAL6).</summary>
    public IPAddress? Local { get; init; }

    /// <summary>Index of the underlay device (IFLA_VXLAN_LINK).</summary>
    public int? UnderlayIndex { get; init; }

    /// <summary>UDP destination port; 0 leaves the kernel default (8472).</summary>
    public ushort Port { get; init; }

    /// <summary>Learn remote MACs from traffic; flannel's default is off ("nolearning").</summary>
    public bool Learning { get; init; }

    /// <summary>Group Based Policy extension.</summary>
    public bool Gbp { get; init; }

    /// <summary>Device MTU, set after creation when given.</summary>
    public int? Mtu { get; init; }

    /// <summary>Device MAC address, set when given (the VtepMAC).</summary>
    public MacAddress? Address { get; init; }
}

/// <summary>The kinds of simple link <see cref="NetlinkExtensions.CreateLinkAsync"/> can create.</summary>
public enum LinkKind
{
    /// <summary>A dummy device.</summary>
    Dummy,

    /// <summary>A bridge.</summary>
    Bridge,

    /// <summary>A veth pair; <see cref="LinkSpec.PeerName"/> names the other end.</summary>
    Veth,

    /// <summary>
    /// A kernel WireGuard device (<c>ip link add NAME type wireguard</c>). Kernels without the module refuse it
    /// (EOPNOTSUPP, "Unknown device type"), which is how a backend learns it must use userspace WireGuard.
    /// </summary>
    WireGuard,
}

/// <summary>A simple link to create.</summary>
public sealed record LinkSpec
{
    /// <summary>Device name.</summary>
    public required string Name { get; init; }

    /// <summary>Kind of device.</summary>
    public required LinkKind Kind { get; init; }

    /// <summary>For veth: the peer's name.</summary>
    public string? PeerName { get; init; }

    /// <summary>For veth: a namespace file descriptor or path to move the peer into (IFLA_NET_NS_FD).</summary>
    public string? PeerNamespacePath { get; init; }

    /// <summary>MTU, when given.</summary>
    public int? Mtu { get; init; }

    /// <summary>Hardware address, when given.</summary>
    public MacAddress? Address { get; init; }

    /// <summary>Index of the master (bridge) device, when given.</summary>
    public int? MasterIndex { get; init; }
}

/// <summary>A link as the kernel reports it.</summary>
public sealed record LinkInfo
{
    /// <summary>Interface index.</summary>
    public required int Index { get; init; }

    /// <summary>Interface name.</summary>
    public required string Name { get; init; }

    /// <summary>IFLA_INFO_KIND, e.g. <c>vxlan</c>, <c>veth</c>, <c>bridge</c>; null for physical devices.</summary>
    public string? Kind { get; init; }

    /// <summary>Hardware address, when the link has a 6-byte one.</summary>
    public MacAddress? Address { get; init; }

    /// <summary>MTU.</summary>
    public int Mtu { get; init; }

    /// <summary>IFF_UP is set.</summary>
    public bool IsUp { get; init; }

    /// <summary>Index of the master device, if enslaved.</summary>
    public int? MasterIndex { get; init; }

    /// <summary>Vxlan parameters when <see cref="Kind"/> is <c>vxlan</c>.</summary>
    public VxlanInfo? Vxlan { get; init; }
}

/// <summary>The vxlan parameters of an existing device (IFLA_INFO_DATA).</summary>
public sealed record VxlanInfo
{
    /// <summary>IFLA_VXLAN_ID.</summary>
    public uint Vni { get; init; }

    /// <summary>IFLA_VXLAN_LOCAL / LOCAL6.</summary>
    public IPAddress? Local { get; init; }

    /// <summary>IFLA_VXLAN_GROUP / GROUP6.</summary>
    public IPAddress? Group { get; init; }

    /// <summary>IFLA_VXLAN_LINK.</summary>
    public int? UnderlayIndex { get; init; }

    /// <summary>IFLA_VXLAN_PORT (host order); 0 when unset.</summary>
    public ushort Port { get; init; }

    /// <summary>IFLA_VXLAN_LEARNING.</summary>
    public bool Learning { get; init; }

    /// <summary>IFLA_VXLAN_GBP present.</summary>
    public bool Gbp { get; init; }

    /// <summary>IFLA_VXLAN_L2MISS.</summary>
    public bool L2Miss { get; init; }

    /// <summary>IFLA_VXLAN_L3MISS.</summary>
    public bool L3Miss { get; init; }
}

/// <summary>An address on a link.</summary>
public sealed record AddressInfo
{
    /// <summary>The link's index.</summary>
    public required int LinkIndex { get; init; }

    /// <summary>The address with its prefix length.</summary>
    public required IPNetwork Address { get; init; }

    /// <summary>The address itself, host bits included (IFA_LOCAL or IFA_ADDRESS).</summary>
    public required IPAddress Local { get; init; }

    /// <summary>Scope: universe (global), link or host.</summary>
    public RouteScope Scope { get; init; }

    /// <summary>The address flags (permanent, deprecated, temporary...).</summary>
    public AddressFlags Flags { get; init; }
}

/// <summary>Address flags (ifa_flags / IFA_FLAGS, <c>IFA_F_*</c> bits).</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Named after the kernel's flag words (ifa_flags, ndm_flags), as BindingFlags is.")]
public enum AddressFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>IFA_F_TEMPORARY (IPv6 privacy address; the same bit is IFA_F_SECONDARY for IPv4).</summary>
    Temporary = 0x01,

    /// <summary>IFA_F_NODAD: no duplicate address detection.</summary>
    NoDad = 0x02,

    /// <summary>IFA_F_OPTIMISTIC.</summary>
    Optimistic = 0x04,

    /// <summary>IFA_F_DADFAILED.</summary>
    DadFailed = 0x08,

    /// <summary>IFA_F_HOMEADDRESS.</summary>
    HomeAddress = 0x10,

    /// <summary>IFA_F_DEPRECATED: the preferred lifetime ran out; not used for new connections.</summary>
    Deprecated = 0x20,

    /// <summary>IFA_F_TENTATIVE: duplicate address detection has not finished.</summary>
    Tentative = 0x40,

    /// <summary>IFA_F_PERMANENT: configured statically, not by autoconfiguration.</summary>
    Permanent = 0x80,

    /// <summary>IFA_F_MANAGETEMPADDR.</summary>
    ManageTemporaryAddress = 0x100,

    /// <summary>IFA_F_NOPREFIXROUTE: no prefix route was added for the address.</summary>
    NoPrefixRoute = 0x200,
}
