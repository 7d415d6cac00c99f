using System.Net;

namespace Flannel.Subnets;

/// <summary>
/// A subnet leased to one node: the IPv4 and/or IPv6 subnet, the attributes the node published, and when
/// the lease ends.
/// </summary>
public sealed record Lease
{
    private readonly IPNetwork? _subnet;
    private readonly IPNetwork? _ipv6Subnet;

    // The key is formatted when a subnet is set, not on every read: the agent, the stores and the backends key their
    // maps by it, thousands of times per snapshot. It is a function of the two subnets, so record equality holds.
    private readonly string? _key;

    /// <summary>The leased IPv4 subnet, e.g. 10.244.1.0/24; <see langword="null"/> when IPv4 is disabled.</summary>
    public IPNetwork? Subnet
    {
        get => _subnet;
        init
        {
            _subnet = value;
            _key = FormatKey(value, _ipv6Subnet);
        }
    }

    /// <summary>The leased IPv6 subnet; <see langword="null"/> when IPv6 is disabled.</summary>
    public IPNetwork? IPv6Subnet
    {
        get => _ipv6Subnet;
        init
        {
            _ipv6Subnet = value;
            _key = FormatKey(_subnet, value);
        }
    }

    /// <summary>What the owner published with the lease.</summary>
    public required LeaseAttributes Attributes { get; init; }

    /// <summary>When the lease expires; <see langword="null"/> for a reservation (a key with no TTL).</summary>
    public DateTimeOffset? Expiration { get; init; }

    /// <summary>
    /// Store-specific version of the lease value (the etcd mod revision, the in-memory store's revision).
    /// Used for compare-and-swap; 0 when unknown.
    /// </summary>
    public long Revision { get; init; }

    /// <summary>
    /// When the lease was created, in the store's order (the etcd create revision); 0 when unknown. When two leases
    /// overlap, the one created first is kept (the agent admits remote leases in this order).
    /// </summary>
    public long CreateRevision { get; init; }

    /// <summary>True when the lease is a reservation: it never expires and is never given to another node.</summary>
    public bool IsReservation => Expiration is null;

    /// <summary>The subnet key, e.g. <c>10.244.1.0-24</c> or <c>10.244.1.0-24&amp;fd00:10:244:1::-64</c>.</summary>
    public string Key => _key ?? SubnetKey.Format(_subnet, _ipv6Subnet);

    /// <summary>True when both leases name the same subnets (the identity flannel's lease watcher keys on).</summary>
    public bool HasSameSubnets(Lease other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Subnet == other.Subnet && IPv6Subnet == other.IPv6Subnet;
    }

    private static string? FormatKey(IPNetwork? subnet, IPNetwork? ipv6Subnet) =>
        subnet is null && ipv6Subnet is null ? null : SubnetKey.Format(subnet, ipv6Subnet);
}
