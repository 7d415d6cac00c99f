using System.Net;
using Flannel.Subnets;

namespace Flannel.Core.Tests.Subnets;

public sealed class LeaseKeyTests
{
    private static readonly LeaseAttributes Attributes = new() { PublicIP = IPAddress.Parse("198.18.0.2"), BackendType = "vxlan" };

    [Fact]
    public void The_key_follows_the_subnets_through_with_expressions()
    {
        var lease = new Lease { Subnet = IPNetwork.Parse("10.244.1.0/24"), Attributes = Attributes };
        Assert.Equal("10.244.1.0-24", lease.Key);

        Lease moved = lease with { Subnet = IPNetwork.Parse("10.244.2.0/24") };
        Assert.Equal("10.244.2.0-24", moved.Key);
        Assert.Equal("10.244.1.0-24", lease.Key);

        Lease dual = moved with { IPv6Subnet = IPNetwork.Parse("fd00:10:244:2::/64") };
        Assert.Equal("10.244.2.0-24&fd00:10:244:2::-64", dual.Key);

        Lease v6Only = dual with { Subnet = null };
        Assert.Equal("0.0.0.0-0&fd00:10:244:2::-64", v6Only.Key);
    }

    [Fact]
    public void Leases_with_the_same_values_are_equal_however_they_were_made()
    {
        var direct = new Lease { Subnet = IPNetwork.Parse("10.244.2.0/24"), Attributes = Attributes, Revision = 7 };
        Lease viaWith = new Lease { Subnet = IPNetwork.Parse("10.244.1.0/24"), Attributes = Attributes } with { Subnet = IPNetwork.Parse("10.244.2.0/24"), Revision = 7 };

        Assert.Equal(direct, viaWith);
        Assert.Equal(direct.GetHashCode(), viaWith.GetHashCode());
        Assert.NotEqual(direct, direct with { Subnet = IPNetwork.Parse("10.244.3.0/24") });
    }

    [Fact]
    public void A_lease_without_any_subnet_has_no_key()
    {
        var lease = new Lease { Attributes = Attributes };
        Assert.Throws<ArgumentException>(() => lease.Key);
    }
}
