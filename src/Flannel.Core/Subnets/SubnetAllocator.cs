using System.Net;
using System.Net.Sockets;
using Flannel.Configuration;
using Flannel.Networking;

namespace Flannel.Subnets;

/// <summary>What <see cref="SubnetAllocator"/> chooses from.</summary>
public sealed record SubnetAllocationRequest
{
    /// <summary>The validated network configuration (<see cref="NetworkConfig.Validate"/>).</summary>
    public required NetworkConfig Config { get; init; }

    /// <summary>Every lease currently in the store, reservations included (expired leases already removed).</summary>
    public required IReadOnlyCollection<Lease> Leases { get; init; }

    /// <summary>This node's public IPv4 address: a lease carrying it is this node's lease.</summary>
    public IPAddress? PublicIP { get; init; }

    /// <summary>This node's public IPv6 address, used to recognise its lease when IPv4 is disabled.</summary>
    public IPAddress? PublicIPv6 { get; init; }

    /// <summary>The IPv4 subnet this node had before (from subnet.env).</summary>
    public IPNetwork? PreviousSubnet { get; init; }

    /// <summary>The IPv6 subnet this node had before (from subnet.env).</summary>
    public IPNetwork? PreviousIPv6Subnet { get; init; }
}

/// <summary>How a subnet was chosen.</summary>
public enum SubnetAllocationKind
{
    /// <summary>An existing lease carries this node's public IP and fits the config: reuse it (and its subnets).</summary>
    ReusedExisting,

    /// <summary>The previous subnet from subnet.env is free and fits the config (for at least one family).</summary>
    ReusedPrevious,

    /// <summary>A free subnet was picked at random.</summary>
    Allocated,
}

/// <summary>The allocator's decision.</summary>
public sealed record SubnetAllocation
{
    /// <summary>How the subnets were chosen.</summary>
    public required SubnetAllocationKind Kind { get; init; }

    /// <summary>The IPv4 subnet; null when IPv4 is disabled.</summary>
    public IPNetwork? Subnet { get; init; }

    /// <summary>The IPv6 subnet; null when IPv6 is disabled.</summary>
    public IPNetwork? IPv6Subnet { get; init; }

    /// <summary>For <see cref="SubnetAllocationKind.ReusedExisting"/>, the lease being reused (update it in place).</summary>
    public Lease? ExistingLease { get; init; }

    /// <summary>
    /// A lease that carries this node's public IP but no longer fits the config. Flannel deletes it before
    /// creating the new lease; its subnet was treated as free. Never a reservation.
    /// </summary>
    public Lease? IncompatibleLease { get; init; }
}

/// <summary>No free subnet is left in SubnetMin..SubnetMax (flannel's "out of subnets").</summary>
public sealed class OutOfSubnetsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OutOfSubnetsException()
        : base("out of subnets")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public OutOfSubnetsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public OutOfSubnetsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Chooses this node's subnets in flannel's order (<c>tryAcquireLease</c>), as a pure function of the config,
/// the existing leases, this node's identity and its previous subnet:
/// <list type="number">
/// <item>reuse the lease whose PublicIP is this node's, if it fits the config (inside SubnetMin..SubnetMax with
/// prefix SubnetLen, for each enabled family, and no subnet for a disabled family);</item>
/// <item>else the previous subnet from subnet.env, if no lease overlaps it and it fits;</item>
/// <item>else a uniformly random pick among the first <see cref="MaxCandidates"/> free subnets walking up from
/// SubnetMin; IPv6 is picked independently the same way.</item>
/// </list>
/// </summary>
/// <remarks>
/// Differences from flannel, all in the direction of not taking someone else's subnet: a reservation (a
/// lease without expiration) is only ever reused by the node whose IP it carries and is never reported as
/// incompatible (flannel would delete it); the previous subnet is refused when any lease overlaps it (flannel
/// checks exact equality); and the previous subnet is considered per family. Free subnets are found by
/// jumping over merged lease intervals, so a nearly full /8 costs the number of leases, not of subnets.
/// </remarks>
public static class SubnetAllocator
{
    /// <summary>Flannel picks among at most this many free subnets.</summary>
    public const int MaxCandidates = 100;

    /// <summary>Chooses the subnets; throws when none is free.</summary>
    /// <exception cref="OutOfSubnetsException">No free subnet is left for an enabled family.</exception>
    /// <exception cref="ArgumentException">The config has not been validated.</exception>
    public static SubnetAllocation Allocate(SubnetAllocationRequest request, Random random)
    {
        if (!TryAllocate(request, random, out SubnetAllocation? allocation, out string? reason))
        {
            throw new OutOfSubnetsException(reason);
        }

        return allocation;
    }

    /// <summary>Chooses the subnets; returns false with the reason ("out of subnets: …") when none is free.</summary>
    /// <exception cref="ArgumentException">The config has not been validated.</exception>
    public static bool TryAllocate(
        SubnetAllocationRequest request,
        Random random,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SubnetAllocation? allocation,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? reason)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(random);
        NetworkConfig config = request.Config;
        FamilyRange? v4 = config.EnableIPv4 ? FamilyRange.From(config.SubnetMin, config.SubnetMax, config.SubnetLen, "IPv4") : null;
        FamilyRange? v6 = config.EnableIPv6 ? FamilyRange.From(config.IPv6SubnetMin, config.IPv6SubnetMax, config.IPv6SubnetLen, "IPv6") : null;
        if (v4 is null && v6 is null)
        {
            throw new ArgumentException("The config enables neither IPv4 nor IPv6.", nameof(request));
        }

        // 1. This node's own lease, recognised by its public IP.
        Lease? own = FindOwnLease(request, v4 is not null);
        Lease? incompatible = null;
        if (own is not null)
        {
            if (Fits(v4, own.Subnet) && Fits(v6, own.IPv6Subnet))
            {
                allocation = new SubnetAllocation
                {
                    Kind = SubnetAllocationKind.ReusedExisting,
                    Subnet = own.Subnet,
                    IPv6Subnet = own.IPv6Subnet,
                    ExistingLease = own,
                };
                reason = null;
                return true;
            }

            // A reservation is an operator's decision: it keeps its subnet even when the config moved on.
            if (!own.IsReservation)
            {
                incompatible = own;
            }
        }

        // The leases whose subnets are taken: everything except the incompatible lease about to be deleted.
        IEnumerable<Lease> taken = incompatible is null ? request.Leases : request.Leases.Where(l => !ReferenceEquals(l, incompatible));
        IPNetwork? subnet = null;
        IPNetwork? ipv6Subnet = null;
        bool reusedPrevious = false;

        if (v4 is not null)
        {
            List<Interval> used = Intervals(taken, static l => l.Subnet);
            if (IsFreeAndFits(v4, request.PreviousSubnet, used))
            {
                subnet = request.PreviousSubnet;
                reusedPrevious = true;
            }
            else if (Pick(v4, used, random) is { } picked)
            {
                subnet = picked;
            }
            else
            {
                allocation = null;
                reason = $"out of subnets: every IPv4 /{v4.PrefixLength} between {v4.Min} and {v4.Max} is leased";
                return false;
            }
        }

        if (v6 is not null)
        {
            List<Interval> used = Intervals(taken, static l => l.IPv6Subnet);
            if (IsFreeAndFits(v6, request.PreviousIPv6Subnet, used))
            {
                ipv6Subnet = request.PreviousIPv6Subnet;
                reusedPrevious = true;
            }
            else if (Pick(v6, used, random) is { } picked)
            {
                ipv6Subnet = picked;
            }
            else
            {
                allocation = null;
                reason = $"out of subnets: every IPv6 /{v6.PrefixLength} between {v6.Min} and {v6.Max} is leased";
                return false;
            }
        }

        allocation = new SubnetAllocation
        {
            Kind = reusedPrevious ? SubnetAllocationKind.ReusedPrevious : SubnetAllocationKind.Allocated,
            Subnet = subnet,
            IPv6Subnet = ipv6Subnet,
            IncompatibleLease = incompatible,
        };
        reason = null;
        return true;
    }

    /// <summary>
    /// True when <paramref name="lease"/>'s subnets fit <paramref name="config"/> (flannel's
    /// <c>isSubnetConfigCompat</c> and <c>isIPv6SubnetConfigCompat</c>): inside Min..Max with the configured prefix
    /// for each enabled family, and absent for a disabled family.
    /// </summary>
    public static bool IsCompatible(NetworkConfig config, Lease lease)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lease);
        FamilyRange? v4 = config.EnableIPv4 ? FamilyRange.From(config.SubnetMin, config.SubnetMax, config.SubnetLen, "IPv4") : null;
        FamilyRange? v6 = config.EnableIPv6 ? FamilyRange.From(config.IPv6SubnetMin, config.IPv6SubnetMax, config.IPv6SubnetLen, "IPv6") : null;
        return Fits(v4, lease.Subnet) && Fits(v6, lease.IPv6Subnet);
    }

    private static Lease? FindOwnLease(SubnetAllocationRequest request, bool ipv4Enabled)
    {
        // 0.0.0.0 is what every IPv6-only node publishes, so it never identifies a node.
        if (ipv4Enabled && request.PublicIP is { } ip && !ip.Equals(IPAddress.Any))
        {
            return request.Leases.FirstOrDefault(l => l.Attributes.PublicIP.Equals(ip));
        }

        if (!ipv4Enabled && request.PublicIPv6 is { } ip6)
        {
            return request.Leases.FirstOrDefault(l => ip6.Equals(l.Attributes.PublicIPv6));
        }

        return null;
    }

    private static bool Fits(FamilyRange? range, IPNetwork? subnet)
    {
        if (range is null)
        {
            return subnet is null;
        }

        return subnet is { } s && range.Fits(s);
    }

    private static bool IsFreeAndFits(FamilyRange range, IPNetwork? previous, List<Interval> used)
    {
        if (previous is not { } p || !range.Fits(p))
        {
            return false;
        }

        UInt128 first = IPNetworkMath.First(p);
        UInt128 last = IPNetworkMath.Last(p);
        foreach (Interval interval in used)
        {
            if (interval.First <= last && interval.Last >= first)
            {
                return false;
            }
        }

        return true;
    }

    private static IPNetwork? Pick(FamilyRange range, List<Interval> used, Random random)
    {
        Span<UInt128> candidates = stackalloc UInt128[MaxCandidates];
        int count = 0;
        int next = 0; // index of the first merged interval that may still overlap
        UInt128 hostMask = IPNetworkMath.HostMask(range.Family, range.PrefixLength);
        SubnetRange.Enumerator walk = IPNetworkMath.EnumerateSubnets(range.Min, range.Max, range.PrefixLength).GetEnumerator();
        while (count < MaxCandidates && walk.MoveNext())
        {
            UInt128 first = walk.CurrentValue;
            UInt128 last = first + hostMask;
            while (next < used.Count && used[next].Last < first)
            {
                next++;
            }

            if (next < used.Count && used[next].First <= last)
            {
                // Jump over the whole taken block instead of testing each subnet inside it.
                if (used[next].Last == UInt128.MaxValue)
                {
                    break;
                }

                walk.SkipTo(used[next].Last + 1);
                continue;
            }

            candidates[count++] = first;
        }

        if (count == 0)
        {
            return null;
        }

        UInt128 chosen = candidates[random.Next(count)];
        return new IPNetwork(IPNetworkMath.FromUInt128(chosen, range.Family), range.PrefixLength);
    }

    /// <summary>The leases' subnets of one family as sorted, merged address intervals.</summary>
    private static List<Interval> Intervals(IEnumerable<Lease> leases, Func<Lease, IPNetwork?> select)
    {
        var intervals = new List<Interval>();
        foreach (Lease lease in leases)
        {
            if (select(lease) is { } subnet)
            {
                intervals.Add(new Interval(IPNetworkMath.First(subnet), IPNetworkMath.Last(subnet)));
            }
        }

        intervals.Sort(static (a, b) => a.First.CompareTo(b.First));
        var merged = new List<Interval>(intervals.Count);
        foreach (Interval interval in intervals)
        {
            if (merged.Count > 0 && (interval.First <= merged[^1].Last || interval.First == merged[^1].Last + 1))
            {
                Interval previous = merged[^1];
                merged[^1] = previous with { Last = UInt128.Max(previous.Last, interval.Last) };
            }
            else
            {
                merged.Add(interval);
            }
        }

        return merged;
    }

    private readonly record struct Interval(UInt128 First, UInt128 Last);

    /// <summary>SubnetMin..SubnetMax and SubnetLen of one family.</summary>
    private sealed record FamilyRange(IPAddress Min, IPAddress Max, int PrefixLength)
    {
        public AddressFamily Family => Min.AddressFamily;

        public static FamilyRange From(IPAddress? min, IPAddress? max, int prefixLength, string family)
        {
            if (min is null || max is null || prefixLength <= 0)
            {
                throw new ArgumentException(
                    $"The {family} part of the config has no SubnetLen/SubnetMin/SubnetMax; call NetworkConfig.Validate() first.");
            }

            return new FamilyRange(min, max, prefixLength);
        }

        public bool Fits(IPNetwork subnet)
        {
            if (subnet.BaseAddress.AddressFamily != Family || subnet.PrefixLength != PrefixLength)
            {
                return false;
            }

            UInt128 value = IPNetworkMath.ToUInt128(subnet.BaseAddress);
            return value >= IPNetworkMath.ToUInt128(Min) && value <= IPNetworkMath.ToUInt128(Max);
        }
    }
}
