using System.Net;
using System.Net.Sockets;
using Flannel.Configuration;
using Flannel.Networking;
using Flannel.Subnets;

namespace Flannel.Core.Tests.Subnets;

public sealed class SubnetAllocatorTests
{
    private static readonly NetworkConfig Config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16"}""").Validate();

    private static readonly NetworkConfig DualConfig =
        NetworkConfig.Parse("""{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}""").Validate();

    private static IPNetwork N(string cidr) => IPNetwork.Parse(cidr);

    private static Lease L(string subnet, string publicIP, DateTimeOffset? expiration = null, string? ipv6 = null) => new()
    {
        Subnet = N(subnet),
        IPv6Subnet = ipv6 is null ? null : N(ipv6),
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse(publicIP), BackendType = "vxlan" },
        Expiration = expiration ?? DateTimeOffset.UnixEpoch.AddDays(1),
    };

    [Fact]
    public void Reuses_the_lease_carrying_this_nodes_public_ip()
    {
        Lease mine = L("10.244.7.0/24", "198.18.0.7");
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [L("10.244.1.0/24", "198.18.0.1"), mine],
            PublicIP = IPAddress.Parse("198.18.0.7"),
            PreviousSubnet = N("10.244.9.0/24"),
        }, new Random(1));

        Assert.Equal(SubnetAllocationKind.ReusedExisting, a.Kind);
        Assert.Same(mine, a.ExistingLease);
        Assert.Equal(N("10.244.7.0/24"), a.Subnet);
        Assert.Null(a.IncompatibleLease);
    }

    [Fact]
    public void Reuses_a_reservation_for_its_own_node()
    {
        Lease reservation = L("10.244.42.0/24", "198.18.0.7") with { Expiration = null };
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [reservation],
            PublicIP = IPAddress.Parse("198.18.0.7"),
        }, new Random(1));
        Assert.Equal(SubnetAllocationKind.ReusedExisting, a.Kind);
        Assert.Same(reservation, a.ExistingLease);
    }

    [Theory]
    [InlineData("10.244.0.0/24")] // below SubnetMin
    [InlineData("10.244.7.0/25")] // wrong prefix
    [InlineData("10.245.7.0/24")] // outside the network
    public void An_incompatible_own_lease_is_reported_for_deletion_and_its_subnet_treated_as_free(string subnet)
    {
        Lease mine = L(subnet, "198.18.0.7");
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [mine],
            PublicIP = IPAddress.Parse("198.18.0.7"),
        }, new Random(1));
        Assert.Equal(SubnetAllocationKind.Allocated, a.Kind);
        Assert.Same(mine, a.IncompatibleLease);
        Assert.True(SubnetAllocator.IsCompatible(Config, new Lease { Subnet = a.Subnet, Attributes = mine.Attributes }));
    }

    [Fact]
    public void An_incompatible_reservation_is_never_deleted_and_keeps_its_subnet()
    {
        Lease reservation = L("10.244.7.0/25", "198.18.0.7") with { Expiration = null };
        for (int seed = 0; seed < 50; seed++)
        {
            SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
            {
                Config = Config,
                Leases = [reservation],
                PublicIP = IPAddress.Parse("198.18.0.7"),
            }, new Random(seed));
            Assert.Null(a.IncompatibleLease);
            Assert.False(IPNetworkMath.Overlaps(a.Subnet!.Value, reservation.Subnet!.Value));
        }
    }

    [Fact]
    public void A_lease_with_a_v6_subnet_is_incompatible_when_ipv6_is_disabled()
    {
        Lease mine = L("10.244.7.0/24", "198.18.0.7", ipv6: "fd00:10:244:7::/64");
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [mine],
            PublicIP = IPAddress.Parse("198.18.0.7"),
        }, new Random(1));
        Assert.Same(mine, a.IncompatibleLease);
    }

    [Fact]
    public void Reuses_the_previous_subnet_when_free_and_compatible()
    {
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [L("10.244.1.0/24", "198.18.0.1")],
            PublicIP = IPAddress.Parse("198.18.0.7"),
            PreviousSubnet = N("10.244.9.0/24"),
        }, new Random(1));
        Assert.Equal(SubnetAllocationKind.ReusedPrevious, a.Kind);
        Assert.Equal(N("10.244.9.0/24"), a.Subnet);
    }

    [Theory]
    [InlineData("10.244.1.0/24")] // taken by another node
    [InlineData("10.244.3.0/24")] // overlapped by another node's bigger lease
    [InlineData("10.244.0.0/24")] // below SubnetMin
    [InlineData("10.244.9.0/25")] // wrong prefix
    [InlineData("10.200.9.0/24")] // outside the network
    public void Ignores_a_previous_subnet_that_is_taken_or_incompatible(string previous)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
            {
                Config = Config,
                Leases = [L("10.244.1.0/24", "198.18.0.1"), L("10.244.2.0/23", "198.18.0.2")],
                PublicIP = IPAddress.Parse("198.18.0.7"),
                PreviousSubnet = N(previous),
            }, new Random(seed));
            Assert.Equal(SubnetAllocationKind.Allocated, a.Kind);
            Assert.NotEqual(N(previous), a.Subnet);
        }
    }

    [Fact]
    public void Random_pick_is_among_the_first_100_free_subnets_and_uses_all_of_them()
    {
        var seen = new HashSet<IPNetwork>();
        for (int seed = 0; seed < 3000; seed++)
        {
            SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest { Config = Config, Leases = [] }, new Random(seed));
            seen.Add(a.Subnet!.Value);
        }

        // SubnetMin is 10.244.1.0, so the first 100 free are 10.244.1.0 .. 10.244.100.0.
        Assert.Equal(100, seen.Count);
        Assert.All(seen, s => Assert.InRange(IPNetworkMath.First(s), IPNetworkMath.First(N("10.244.1.0/24")), IPNetworkMath.First(N("10.244.100.0/24"))));
    }

    [Fact]
    public void Same_seed_same_choice()
    {
        var request = new SubnetAllocationRequest { Config = Config, Leases = [L("10.244.5.0/24", "198.18.0.5")] };
        Assert.Equal(SubnetAllocator.Allocate(request, new Random(42)), SubnetAllocator.Allocate(request, new Random(42)));
    }

    [Fact]
    public void Dual_stack_picks_both_families_independently()
    {
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = DualConfig,
            Leases = [L("10.244.1.0/24", "198.18.0.1", ipv6: "fd00:10:244:1::/64")],
            PublicIP = IPAddress.Parse("198.18.0.7"),
        }, new Random(3));
        Assert.NotNull(a.Subnet);
        Assert.NotNull(a.IPv6Subnet);
        Assert.Equal(64, a.IPv6Subnet!.Value.PrefixLength);
        Assert.NotEqual(N("fd00:10:244:1::/64"), a.IPv6Subnet);
        Assert.True(DualConfig.IPv6Network!.Value.Contains(a.IPv6Subnet.Value.BaseAddress));
    }

    [Fact]
    public void Dual_stack_reuse_needs_both_subnets()
    {
        Lease v4Only = L("10.244.7.0/24", "198.18.0.7");
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = DualConfig,
            Leases = [v4Only],
            PublicIP = IPAddress.Parse("198.18.0.7"),
        }, new Random(3));
        Assert.Same(v4Only, a.IncompatibleLease);
        Assert.NotNull(a.IPv6Subnet);
    }

    [Fact]
    public void Ipv6_only_recognises_its_lease_by_public_ipv6()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}""").Validate();
        Lease other = new()
        {
            IPv6Subnet = N("fd00:10:244:3::/64"),
            Attributes = new LeaseAttributes { PublicIPv6 = IPAddress.Parse("fd00:198::3") },
            Expiration = DateTimeOffset.UnixEpoch,
        };
        Lease mine = other with { IPv6Subnet = N("fd00:10:244:4::/64"), Attributes = new LeaseAttributes { PublicIPv6 = IPAddress.Parse("fd00:198::4") } };
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = config,
            Leases = [other, mine],
            PublicIP = IPAddress.Any,
            PublicIPv6 = IPAddress.Parse("fd00:198::4"),
        }, new Random(1));
        Assert.Same(mine, a.ExistingLease);
        Assert.Null(a.Subnet);
    }

    [Fact]
    public void Zero_public_ip_never_identifies_a_node()
    {
        Lease someone = L("10.244.7.0/24", "0.0.0.0");
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = Config,
            Leases = [someone],
            PublicIP = IPAddress.Any,
        }, new Random(1));
        Assert.Equal(SubnetAllocationKind.Allocated, a.Kind);
        Assert.NotEqual(someone.Subnet, a.Subnet);
    }

    [Fact]
    public void Out_of_subnets_when_the_range_is_full()
    {
        NetworkConfig small = NetworkConfig.Parse("""{"Network":"10.244.0.0/28"}""").Validate(); // /30s: .4 .8 .12
        Lease[] leases = [L("10.244.0.4/30", "198.18.0.1"), L("10.244.0.8/30", "198.18.0.2"), L("10.244.0.12/30", "198.18.0.3")];
        var request = new SubnetAllocationRequest { Config = small, Leases = leases, PublicIP = IPAddress.Parse("198.18.0.9") };

        var ex = Assert.Throws<OutOfSubnetsException>(() => SubnetAllocator.Allocate(request, new Random(1)));
        Assert.StartsWith("out of subnets", ex.Message, StringComparison.Ordinal);
        Assert.Contains("10.244.0.4", ex.Message, StringComparison.Ordinal);
        Assert.False(SubnetAllocator.TryAllocate(request, new Random(1), out _, out string? reason));
        Assert.Equal(ex.Message, reason);

        // One expired lease removed by the store makes room again.
        SubnetAllocation a = SubnetAllocator.Allocate(request with { Leases = leases[1..] }, new Random(1));
        Assert.Equal(N("10.244.0.4/30"), a.Subnet);
    }

    [Fact]
    public void Unvalidated_config_is_rejected() =>
        Assert.Throws<ArgumentException>(() => SubnetAllocator.Allocate(
            new SubnetAllocationRequest { Config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16"}"""), Leases = [] }, new Random(1)));

    [Fact]
    public void A_huge_mostly_full_network_is_cheap()
    {
        // 10.0.0.0/8 with /24s: one lease covering 10.0.0.0/9 and another 10.128.0.0/10 leave 10.192.0.0/10 free.
        NetworkConfig big = NetworkConfig.Parse("""{"Network":"10.0.0.0/8"}""").Validate();
        SubnetAllocation a = SubnetAllocator.Allocate(new SubnetAllocationRequest
        {
            Config = big,
            Leases = [L("10.0.0.0/9", "198.18.0.1"), L("10.128.0.0/10", "198.18.0.2")],
        }, new Random(9));
        Assert.True(N("10.192.0.0/10").Contains(a.Subnet!.Value.BaseAddress));
        Assert.InRange(IPNetworkMath.First(a.Subnet.Value), IPNetworkMath.First(N("10.192.0.0/24")), IPNetworkMath.First(N("10.192.99.0/24")));
    }

    // ---- property tests ----

    [Theory]
    [InlineData(AddressFamily.InterNetwork, 1)]
    [InlineData(AddressFamily.InterNetwork, 2)]
    [InlineData(AddressFamily.InterNetworkV6, 3)]
    public void Allocations_never_overlap_stay_in_range_on_boundary_and_out_of_subnets_exactly_when_full(AddressFamily family, int seed)
    {
        var rng = new Random(seed);
        int outOfSubnets = 0;
        for (int round = 0; round < 400; round++)
        {
            (NetworkConfig config, List<IPNetwork> all) = RandomConfig(rng, family);
            List<Lease> leases = RandomLeases(rng, config, all, family);
            var request = new SubnetAllocationRequest { Config = config, Leases = leases, PublicIP = IPAddress.Parse("198.18.255.254") };

            // Brute force: the free subnets in walk order.
            List<IPNetwork> free = all.Where(s => !leases.Any(l => IPNetworkMath.Overlaps(s, Subnet(l, family)))).ToList();

            bool ok = SubnetAllocator.TryAllocate(request, new Random(rng.Next()), out SubnetAllocation? a, out string? reason);
            if (free.Count == 0)
            {
                Assert.False(ok, $"round {round}: allocated {a?.Subnet}{a?.IPv6Subnet} although the range is full");
                Assert.StartsWith("out of subnets", reason, StringComparison.Ordinal);
                outOfSubnets++;
                continue;
            }

            Assert.True(ok, $"round {round}: {reason} although {free.Count} subnets are free");
            IPNetwork chosen = family == AddressFamily.InterNetwork ? a!.Subnet!.Value : a!.IPv6Subnet!.Value;
            Assert.All(leases, l => Assert.False(IPNetworkMath.Overlaps(chosen, Subnet(l, family)), $"round {round}: {chosen} overlaps {Subnet(l, family)}"));
            Assert.Contains(chosen, free.Take(SubnetAllocator.MaxCandidates));
            Assert.True(IPNetworkMath.IsAligned(chosen.BaseAddress, chosen.PrefixLength));
            Assert.True(SubnetAllocator.IsCompatible(config, family == AddressFamily.InterNetwork
                ? new Lease { Subnet = chosen, Attributes = new LeaseAttributes() }
                : new Lease { IPv6Subnet = chosen, Attributes = new LeaseAttributes() }));
        }

        Assert.InRange(outOfSubnets, 1, 399); // both outcomes were exercised
    }

    private static IPNetwork Subnet(Lease lease, AddressFamily family) =>
        family == AddressFamily.InterNetwork ? lease.Subnet!.Value : lease.IPv6Subnet!.Value;

    private static (NetworkConfig Config, List<IPNetwork> All) RandomConfig(Random rng, AddressFamily family)
    {
        bool v4 = family == AddressFamily.InterNetwork;
        int bits = v4 ? 32 : 128;
        int prefix = v4 ? rng.Next(16, 29) : rng.Next(100, 125);
        int subnetLen = Math.Min(prefix + rng.Next(2, 7), v4 ? 30 : 126);
        UInt128 baseValue = (v4 ? (UInt128)(uint)rng.Next() : ((UInt128)(ulong)rng.NextInt64() << 64) | (ulong)rng.NextInt64())
            & ~IPNetworkMath.HostMask(family, prefix);
        var network = new IPNetwork(IPNetworkMath.FromUInt128(baseValue, family), prefix);
        UInt128 size = UInt128.One << (bits - subnetLen);
        UInt128 count = UInt128.One << (subnetLen - prefix);
        UInt128 minIndex = (UInt128)rng.Next(0, (int)count / 2);
        UInt128 maxIndex = minIndex + (UInt128)rng.Next(0, (int)(count - minIndex));
        IPAddress min = IPNetworkMath.FromUInt128(baseValue + (minIndex * size), family);
        IPAddress max = IPNetworkMath.FromUInt128(baseValue + (maxIndex * size), family);
        string json = v4
            ? $$"""{"Network":"{{network}}","SubnetLen":{{subnetLen}},"SubnetMin":"{{min}}","SubnetMax":"{{max}}"}"""
            : $$"""{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"{{network}}","IPv6SubnetLen":{{subnetLen}},"IPv6SubnetMin":"{{min}}","IPv6SubnetMax":"{{max}}"}""";
        NetworkConfig config = NetworkConfig.Parse(json).Validate();

        var all = new List<IPNetwork>();
        foreach (IPNetwork subnet in IPNetworkMath.EnumerateSubnets(min, max, subnetLen))
        {
            all.Add(subnet);
        }

        return (config, all);
    }

    private static List<Lease> RandomLeases(Random rng, NetworkConfig config, List<IPNetwork> all, AddressFamily family)
    {
        var leases = new List<Lease>();
        bool fill = rng.Next(4) == 0; // a quarter of the rounds fill the whole range
        foreach (IPNetwork subnet in all)
        {
            if (fill || rng.Next(3) == 0)
            {
                leases.Add(MakeLease(subnet, family, rng.Next(5) == 0));
            }
        }

        // A few leases of other sizes, some outside the range, overlapping partially.
        int extra = rng.Next(0, 4);
        IPNetwork net = family == AddressFamily.InterNetwork ? config.Network!.Value : config.IPv6Network!.Value;
        int bits = family == AddressFamily.InterNetwork ? 32 : 128;
        for (int i = 0; i < extra; i++)
        {
            int len = rng.Next(net.PrefixLength, bits + 1);
            UInt128 offset = ((UInt128)(ulong)rng.NextInt64()) & IPNetworkMath.HostMask(family, net.PrefixLength);
            IPAddress address = IPNetworkMath.FromUInt128(IPNetworkMath.First(net) + offset, family);
            leases.Add(MakeLease(new IPNetwork(IPNetworkMath.Mask(address, len), len), family, rng.Next(2) == 0));
        }

        return leases;
    }

    private static Lease MakeLease(IPNetwork subnet, AddressFamily family, bool reservation) => new()
    {
        Subnet = family == AddressFamily.InterNetwork ? subnet : null,
        IPv6Subnet = family == AddressFamily.InterNetworkV6 ? subnet : null,
        Attributes = new LeaseAttributes { PublicIP = IPAddress.Parse("198.18.0.1") },
        Expiration = reservation ? null : DateTimeOffset.UnixEpoch,
    };
}
