using System.Net;
using Flannel.Subnets;

namespace Flannel.Core.Tests.Subnets;

public sealed class SubnetKeyTests
{
    [Theory]
    [InlineData("10.244.1.0/24", null, "10.244.1.0-24")]
    [InlineData("10.244.1.0/24", "fd00:10:244:1::/64", "10.244.1.0-24&fd00:10:244:1::-64")]
    public void Formats_flannels_key(string v4, string? v6, string expected)
    {
        Assert.Equal(expected, SubnetKey.Format(IPNetwork.Parse(v4), v6 is null ? null : IPNetwork.Parse(v6)));
    }

    [Theory]
    [InlineData("10.244.1.0-24", "10.244.1.0/24", null)]
    [InlineData("/coreos.com/network/subnets/10.244.1.0-24", "10.244.1.0/24", null)]
    [InlineData("10.244.1.0-24&fd00:10:244:1::-64", "10.244.1.0/24", "fd00:10:244:1::/64")]
    [InlineData("10.244.1.7-24", "10.244.1.0/24", null)]
    public void Parses_flannels_key(string key, string v4, string? v6)
    {
        Assert.True(SubnetKey.TryParse(key, out IPNetwork? subnet, out IPNetwork? ipv6Subnet));
        Assert.Equal(IPNetwork.Parse(v4), subnet);
        Assert.Equal(v6 is null ? null : IPNetwork.Parse(v6), ipv6Subnet);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.244.1.0")]
    [InlineData("10.244.1.0-")]
    [InlineData("10.244.1.0-33")]
    [InlineData("10.244.1.0-2x")]
    [InlineData("fd00::-64")]
    [InlineData("10.244.1.0-24&10.0.0.0-8")]
    [InlineData("garbage")]
    public void Rejects_keys_flannel_would_skip(string key)
    {
        Assert.False(SubnetKey.TryParse(key, out _, out _));
        Assert.Contains(key, Assert.Throws<FormatException>(() => SubnetKey.Parse(key)).Message, StringComparison.Ordinal);
    }
}
