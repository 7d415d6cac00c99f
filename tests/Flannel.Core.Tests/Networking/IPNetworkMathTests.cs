using System.Net;
using System.Net.Sockets;
using Flannel.Networking;

namespace Flannel.Core.Tests.Networking;

public sealed class IPNetworkMathTests
{
    private static IPNetwork N(string cidr) => IPNetwork.Parse(cidr);

    private static IPAddress A(string address) => IPAddress.Parse(address);

    [Theory]
    [InlineData("10.244.2.0/24", "10.244.2.1")]
    [InlineData("10.244.0.128/25", "10.244.0.129")]
    [InlineData("fd00:10:244:1::/64", "fd00:10:244:1::1")]
    [InlineData("10.0.0.0/31", "10.0.0.1")]
    public void First_host_is_network_plus_one(string cidr, string expected) =>
        Assert.Equal(A(expected), IPNetworkMath.FirstHost(N(cidr)));

    [Theory]
    [InlineData("10.0.0.1/32")]
    [InlineData("fd00::1/128")]
    public void First_host_of_a_single_address_network_is_an_error(string cidr) =>
        Assert.Throws<ArgumentException>(() => IPNetworkMath.FirstHost(N(cidr)));

    [Theory]
    [InlineData("10.244.1.0/24", "10.244.2.0/24")]
    [InlineData("10.244.255.0/24", "10.245.0.0/24")]
    [InlineData("10.244.0.192/26", "10.244.1.0/26")]
    [InlineData("fd00:0:0:ff::/64", "fd00:0:0:100::/64")]
    [InlineData("fd00::/64", "fd00:0:0:1::/64")]
    public void Next_is_the_following_subnet_of_the_same_size(string cidr, string expected)
    {
        Assert.True(IPNetworkMath.TryGetNext(N(cidr), out IPNetwork next));
        Assert.Equal(N(expected), next);
    }

    [Theory]
    [InlineData("255.255.255.0/24")]
    [InlineData("ffff:ffff:ffff:ffff::/64")]
    [InlineData("0.0.0.0/0")]
    public void Next_stops_at_the_end_of_the_address_space(string cidr) =>
        Assert.False(IPNetworkMath.TryGetNext(N(cidr), out _));

    [Theory]
    [InlineData("10.244.0.0/16", "10.244.3.0/24", true)]
    [InlineData("10.244.0.0/16", "10.244.0.0/16", true)]
    [InlineData("10.244.3.0/24", "10.244.0.0/16", false)]
    [InlineData("10.244.0.0/16", "10.245.0.0/24", false)]
    [InlineData("10.244.0.0/16", "fd00::/64", false)]
    [InlineData("fd00::/48", "fd00:0:0:7::/64", true)]
    public void Contains_network(string outer, string inner, bool expected) =>
        Assert.Equal(expected, IPNetworkMath.Contains(N(outer), N(inner)));

    [Theory]
    [InlineData("10.244.0.0/16", "10.244.3.0/24", true)]
    [InlineData("10.244.3.0/24", "10.244.0.0/16", true)]
    [InlineData("10.244.3.0/24", "10.244.3.128/25", true)]
    [InlineData("10.244.3.0/25", "10.244.3.128/25", false)]
    [InlineData("10.244.3.0/24", "10.244.4.0/24", false)]
    [InlineData("10.0.0.0/8", "fd00::/8", false)]
    [InlineData("fd00::/64", "fd00::8000:0:0:0/65", true)]
    public void Overlaps_is_symmetric_and_exact(string a, string b, bool expected)
    {
        Assert.Equal(expected, IPNetworkMath.Overlaps(N(a), N(b)));
        Assert.Equal(expected, IPNetworkMath.Overlaps(N(b), N(a)));
    }

    [Theory]
    [InlineData("10.244.1.0", 24, true)]
    [InlineData("10.244.1.128", 24, false)]
    [InlineData("10.244.1.128", 25, true)]
    [InlineData("fd00:0:0:1::", 64, true)]
    [InlineData("fd00:0:0:1::1", 64, false)]
    public void Alignment(string address, int prefix, bool expected) =>
        Assert.Equal(expected, IPNetworkMath.IsAligned(A(address), prefix));

    [Fact]
    public void First_and_last_address()
    {
        Assert.Equal(IPNetworkMath.ToUInt128(A("10.244.1.0")), IPNetworkMath.First(N("10.244.1.0/24")));
        Assert.Equal(IPNetworkMath.ToUInt128(A("10.244.1.255")), IPNetworkMath.Last(N("10.244.1.0/24")));
        Assert.Equal(UInt128.MaxValue, IPNetworkMath.Last(N("::/0")));
        Assert.Equal(IPNetworkMath.ToUInt128(A("255.255.255.255")), IPNetworkMath.Last(N("0.0.0.0/0")));
    }

    [Fact]
    public void Mask_and_round_trip_through_integers()
    {
        Assert.Equal(A("10.244.0.0"), IPNetworkMath.Mask(A("10.244.3.7"), 16));
        Assert.Equal(A("fd00:10::"), IPNetworkMath.Mask(A("fd00:10:244::1"), 32));
        foreach (string text in new[] { "0.0.0.0", "10.244.1.7", "255.255.255.255", "::", "fd00::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" })
        {
            IPAddress address = A(text);
            Assert.Equal(address, IPNetworkMath.FromUInt128(IPNetworkMath.ToUInt128(address), address.AddressFamily));
        }
    }

    [Fact]
    public void Enumerates_every_subnet_from_min_to_max_inclusive()
    {
        var seen = new List<IPNetwork>();
        foreach (IPNetwork subnet in IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("10.244.4.0"), 24))
        {
            seen.Add(subnet);
        }

        Assert.Equal([N("10.244.1.0/24"), N("10.244.2.0/24"), N("10.244.3.0/24"), N("10.244.4.0/24")], seen);
        Assert.Equal((UInt128)4, IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("10.244.4.0"), 24).Count);
    }

    [Fact]
    public void Max_that_is_not_a_boundary_still_includes_the_subnet_starting_before_it()
    {
        Assert.Equal((UInt128)2, IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("10.244.2.7"), 24).Count);
        int n = 0;
        foreach (IPNetwork _ in IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("10.244.2.7"), 24))
        {
            n++;
        }

        Assert.Equal(2, n);
    }

    [Fact]
    public void Empty_range_when_min_is_after_max()
    {
        SubnetRange range = IPNetworkMath.EnumerateSubnets(A("10.244.5.0"), A("10.244.4.0"), 24);
        Assert.True(range.IsEmpty);
        Assert.Equal(UInt128.Zero, range.Count);
        Assert.False(range.GetEnumerator().MoveNext());
    }

    [Fact]
    public void Enumeration_stops_at_the_end_of_the_address_space()
    {
        var seen = new List<IPNetwork>();
        foreach (IPNetwork subnet in IPNetworkMath.EnumerateSubnets(A("255.255.254.0"), A("255.255.255.255"), 24))
        {
            seen.Add(subnet);
        }

        Assert.Equal([N("255.255.254.0/24"), N("255.255.255.0/24")], seen);

        int v6 = 0;
        foreach (IPNetwork _ in IPNetworkMath.EnumerateSubnets(A("ffff:ffff:ffff:fffe::"), A("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 64))
        {
            v6++;
        }

        Assert.Equal(2, v6);
    }

    [Fact]
    public void Ipv6_ranges_are_counted_with_128_bit_math()
    {
        SubnetRange range = IPNetworkMath.EnumerateSubnets(A("fd00:0:0:1::"), A("fd00:0:ffff:ffff::"), 64);
        Assert.Equal((UInt128)0xFFFF_FFFF, range.Count);
        Assert.Equal(AddressFamily.InterNetworkV6, range.Family);
    }

    [Fact]
    public void Skip_to_jumps_to_the_next_boundary()
    {
        SubnetRange.Enumerator e = IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("10.244.9.0"), 24).GetEnumerator();
        Assert.True(e.MoveNext());
        e.SkipTo(IPNetworkMath.ToUInt128(A("10.244.5.3")));
        Assert.True(e.MoveNext());
        Assert.Equal(N("10.244.6.0/24"), e.Current);
        e.SkipTo(IPNetworkMath.ToUInt128(A("10.244.200.0")));
        Assert.False(e.MoveNext());
    }

    [Fact]
    public void Misaligned_start_is_rejected() =>
        Assert.Throws<ArgumentException>(() => IPNetworkMath.EnumerateSubnets(A("10.244.1.1"), A("10.244.9.0"), 24));

    [Fact]
    public void Mixed_families_are_rejected() =>
        Assert.Throws<ArgumentException>(() => IPNetworkMath.EnumerateSubnets(A("10.244.1.0"), A("fd00::"), 24));

    [Fact]
    public void Walking_a_range_does_not_allocate()
    {
        SubnetRange range = IPNetworkMath.EnumerateSubnets(A("10.0.1.0"), A("10.255.255.0"), 24);
        static UInt128 Sum(SubnetRange r)
        {
            UInt128 sum = 0;
            SubnetRange.Enumerator e = r.GetEnumerator();
            while (e.MoveNext())
            {
                sum += e.CurrentValue;
            }

            return sum;
        }

        Sum(range); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        UInt128 total = Sum(range);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(UInt128.Zero, total);
    }
}

public sealed class IPTextTests
{
    [Theory]
    [InlineData("10.244.0.1", true)]
    [InlineData("0.0.0.0", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("fd00::1", true)]
    [InlineData("::ffff:10.0.0.1", true)]
    [InlineData("10.244.0", false)]
    [InlineData("10", false)]
    [InlineData("010.0.0.1", false)]
    [InlineData("256.0.0.1", false)]
    [InlineData("0x0a.0.0.1", false)]
    [InlineData(" 10.0.0.1", false)]
    [InlineData("10.0.0.1 ", false)]
    [InlineData("[fd00::1]", false)]
    [InlineData("fe80::1%eth0", false)]
    [InlineData("", false)]
    public void Parses_addresses_as_go_does(string text, bool valid) =>
        Assert.Equal(valid, IPText.TryParseAddress(text, out _));

    [Theory]
    [InlineData("10.244.3.7/16", "10.244.0.0/16")]
    [InlineData("fd00:10:244::1/56", "fd00:10:244::/56")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    public void Parses_cidrs_dropping_host_bits(string text, string expected)
    {
        Assert.True(IPText.TryParseNetwork(text, out IPNetwork network));
        Assert.Equal(IPNetwork.Parse(expected), network);
    }

    [Theory]
    [InlineData("10.244.0.0")]
    [InlineData("10.244.0.0/")]
    [InlineData("10.244.0.0/33")]
    [InlineData("fd00::/129")]
    [InlineData("10.244.0.0/-1")]
    [InlineData("10.244.0.0/1a")]
    [InlineData("10.244/16")]
    public void Rejects_bad_cidrs(string text) => Assert.False(IPText.TryParseNetwork(text, out _));

    [Fact]
    public void Family_filters()
    {
        Assert.False(IPText.TryParseNetwork("fd00::/64", AddressFamily.InterNetwork, out _));
        Assert.True(IPText.TryParseNetwork("fd00::/64", AddressFamily.InterNetworkV6, out _));
        Assert.False(IPText.TryParseAddress("10.0.0.1", AddressFamily.InterNetworkV6, out IPAddress? none));
        Assert.Null(none);
    }
}
