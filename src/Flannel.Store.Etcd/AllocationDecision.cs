using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Flannel.Configuration;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.Store.Etcd;

/// <summary>What the acquisition should do next, decided from the current leases.</summary>
internal abstract record AllocationDecision
{
    /// <summary>Reuse the lease whose PublicIP matches this node (rewrite it with a compare-and-swap).</summary>
    public sealed record Reuse(Lease Existing) : AllocationDecision;

    /// <summary>This node's old lease does not fit the config any more: delete it and decide again.</summary>
    public sealed record Incompatible(Lease Existing) : AllocationDecision;

    /// <summary>Create a lease for these (free) subnets.</summary>
    public sealed record Create(IPNetwork? Subnet, IPNetwork? IPv6Subnet, bool IsPrevious) : AllocationDecision;

    /// <summary>No free subnet is left.</summary>
    public sealed record OutOfSubnets(string Message) : AllocationDecision;
}

/// <summary>
/// flannel's allocation order (pkg/subnet/etcd/local_manager.go tryAcquireLease): reuse by PublicIP, then
/// the previous subnet, then a random free subnet among at most 100 candidates. Reservations are never
/// offered to another node because they are in the lease list like any other taken subnet.
/// </summary>
internal static class AllocationPlanner
{
    private const int CandidateCap = 100;

    public static AllocationDecision Decide(NetworkConfig config, IReadOnlyList<Lease> leases, LeaseRequest request)
    {
        LeaseAttributes attrs = request.Attributes;
        foreach (Lease lease in leases)
        {
            bool sameNode = config.EnableIPv4
                ? !attrs.PublicIP.Equals(IPAddress.Any) && lease.Attributes.PublicIP.Equals(attrs.PublicIP)
                : attrs.PublicIPv6 is not null && attrs.PublicIPv6.Equals(lease.Attributes.PublicIPv6);
            if (sameNode)
            {
                return IsCompatible(config, lease.Subnet, lease.IPv6Subnet)
                    ? new AllocationDecision.Reuse(lease)
                    : new AllocationDecision.Incompatible(lease);
            }
        }

        if ((request.PreviousSubnet is not null || request.PreviousIPv6Subnet is not null)
            && IsCompatible(config, config.EnableIPv4 ? request.PreviousSubnet : null, config.EnableIPv6 ? request.PreviousIPv6Subnet : null)
            && !leases.Any(l => Overlaps(l.Subnet, request.PreviousSubnet) || Overlaps(l.IPv6Subnet, request.PreviousIPv6Subnet)))
        {
            return new AllocationDecision.Create(
                config.EnableIPv4 ? request.PreviousSubnet : null,
                config.EnableIPv6 ? request.PreviousIPv6Subnet : null,
                IsPrevious: true);
        }

        IPNetwork? v4 = null;
        IPNetwork? v6 = null;
        if (config.EnableIPv4)
        {
            v4 = PickFree(config.Network!.Value.BaseAddress.AddressFamily, config.SubnetMin!, config.SubnetMax!, config.SubnetLen, leases.Select(l => l.Subnet));
            if (v4 is null)
            {
                return new AllocationDecision.OutOfSubnets($"out of subnets: every /{config.SubnetLen} of {config.Network} between {config.SubnetMin} and {config.SubnetMax} is leased or reserved");
            }
        }

        if (config.EnableIPv6)
        {
            v6 = PickFree(AddressFamily.InterNetworkV6, config.IPv6SubnetMin!, config.IPv6SubnetMax!, config.IPv6SubnetLen, leases.Select(l => l.IPv6Subnet));
            if (v6 is null)
            {
                return new AllocationDecision.OutOfSubnets($"out of IPv6 subnets: every /{config.IPv6SubnetLen} of {config.IPv6Network} is leased or reserved");
            }
        }

        return new AllocationDecision.Create(v4, v6, IsPrevious: false);
    }

    public static bool IsCompatible(NetworkConfig config, IPNetwork? subnet, IPNetwork? ipv6Subnet)
    {
        if (config.EnableIPv4 != subnet.HasValue || config.EnableIPv6 != ipv6Subnet.HasValue)
        {
            return false;
        }

        return (subnet is not { } s || InRange(s, config.SubnetLen, config.SubnetMin!, config.SubnetMax!))
            && (ipv6Subnet is not { } s6 || InRange(s6, config.IPv6SubnetLen, config.IPv6SubnetMin!, config.IPv6SubnetMax!));
    }

    private static bool InRange(IPNetwork subnet, int length, IPAddress min, IPAddress max)
    {
        if (subnet.PrefixLength != length || subnet.BaseAddress.AddressFamily != min.AddressFamily)
        {
            return false;
        }

        UInt128 value = IPNetworkMath.ToUInt128(subnet.BaseAddress);
        return value >= IPNetworkMath.ToUInt128(min) && value <= IPNetworkMath.ToUInt128(max);
    }

    private static bool Overlaps(IPNetwork? a, IPNetwork? b) =>
        a is { } x && b is { } y && x.BaseAddress.AddressFamily == y.BaseAddress.AddressFamily
        && (x.Contains(y.BaseAddress) || y.Contains(x.BaseAddress));

    private static IPNetwork? PickFree(AddressFamily family, IPAddress min, IPAddress max, int length, IEnumerable<IPNetwork?> taken)
    {
        IPNetwork[] used = taken.OfType<IPNetwork>().Where(n => n.BaseAddress.AddressFamily == family).ToArray();
        UInt128 step = IPNetworkMath.Size(family, length);
        UInt128 end = IPNetworkMath.ToUInt128(max);
        var candidates = new List<IPNetwork>(CandidateCap);
        for (UInt128 at = IPNetworkMath.ToUInt128(min); at <= end && candidates.Count < CandidateCap; at += step)
        {
            var candidate = new IPNetwork(IPNetworkMath.FromUInt128(at, family), length);
            if (!used.Any(u => Overlaps(u, candidate)))
            {
                candidates.Add(candidate);
            }

            if (end - at < step)
            {
                break;
            }
        }

        return candidates.Count == 0 ? null : candidates[RandomNumberGenerator.GetInt32(candidates.Count)];
    }
}
