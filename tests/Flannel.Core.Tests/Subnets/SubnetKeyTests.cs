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

    [Fact]
    public void An_ipv6_only_key_has_flannels_empty_ipv4_part_and_reads_back_without_ipv4()
    {
        // flannel's MakeSubnetKey(ip.IP4Net{}, sn6) with EnableIPv4 false.
        Assert.Equal("0.0.0.0-0&fd00:10:244:1::-64", SubnetKey.Format(null, IPNetwork.Parse("fd00:10:244:1::/64")));
        Assert.True(SubnetKey.TryParse("/coreos.com/network/subnets/0.0.0.0-0&fd00:10:244:1::-64", out IPNetwork? subnet, out IPNetwork? ipv6Subnet));
        Assert.Null(subnet);
        Assert.Equal(IPNetwork.Parse("fd00:10:244:1::/64"), ipv6Subnet);
        Assert.False(SubnetKey.TryParse("0.0.0.0-0", out _, out _)); // no subnet of either family
    }

    [Theory]
    [InlineData("10.244.1.0-24", "10.244.1.0/24", null)]
    [InlineData("/coreos.com/network/subnets/10.244.1.0-24", "10.244.1.0/24", null)]
    [InlineData("10.244.1.0-24&fd00:10:244:1::-64", "10.244.1.0/24", "fd00:10:244:1::/64")]
    // Go's regexp is unanchored at the start: whatever precedes the key is ignored, even another key (the admission
    // rules reject the 10.0.0.0/8 that flannel reads here).
    [InlineData("x10.244.1.0-24", "10.244.1.0/24", null)]
    [InlineData("10.244.1.0-24&10.0.0.0-8", "10.0.0.0/8", null)]
    // strconv.ParseUint accepts leading zeros.
    [InlineData("10.244.1.0-024&fd00::-064", "10.244.1.0/24", "fd00::/64")]
    [InlineData("10.244.1.0-31", "10.244.1.0/31", null)]
    [InlineData("10.244.1.0-24&fd00::-127", "10.244.1.0/24", "fd00::/127")]
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
    [InlineData("10.244.1.0-2x")]
    [InlineData("fd00::-64")]
    [InlineData("garbage")]
    // IPAddress.TryParse reads these as 10.12.0.0 and 8.12.13.0; Go's net.ParseIP rejects them.
    [InlineData("10.12.13-24")]
    [InlineData("010.12.13.0-24")]
    [InlineData("0x0a.12.13.0-24")]
    [InlineData("10.12.13.0x1-24")]
    [InlineData("10.244.256.0-24")]
    // ParseUint(…, 10, 5) and (…, 10, 7): at most 31 and 127.
    [InlineData("10.244.1.0-32")]
    [InlineData("10.244.1.0-33")]
    [InlineData("10.244.1.0-99999999999999999999")]
    [InlineData("10.244.1.0-24&fd00::-128")]
    // The key pattern's IPv6 part is lower-case only.
    [InlineData("10.244.1.0-24&FD00::-64")]
    [InlineData("10.244.1.0-24&fd00::-")]
    [InlineData("10.244.1.0-24&")]
    [InlineData("10.244.1.0-24\n")]
    [InlineData("10.244.1.0-24&fd00:::-64")]
    // Host bits set: flannel never writes such a key, and masking would give two keys one subnet.
    [InlineData("10.244.1.7-24")]
    [InlineData("10.244.1.0-24&fd00::1-64")]
    public void Rejects_keys_flannel_would_skip(string key)
    {
        Assert.False(SubnetKey.TryParse(key, out _, out _));
        Assert.Contains(key, Assert.Throws<FormatException>(() => SubnetKey.Parse(key)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plain_ipv4_key_reads_as_the_pattern_reads_it()
    {
        // A key of the plain form D.D.D.D-D skips the pattern. A leading space makes any key miss that form without
        // changing what the pattern (unanchored at the start) finds, so the two reads must agree on every key.
        var random = new Random(1);
        const string alphabet = "0123456789012345678901234567890123456789....--&:af";
        int parsed = 0;
        for (int i = 0; i < 20_000; i++)
        {
            string text = i % 2 == 0 ? RandomText() : RandomKey();
            bool plain = SubnetKey.TryParse(text, out IPNetwork? subnet, out IPNetwork? ipv6Subnet);
            bool pattern = SubnetKey.TryParse(" " + text, out IPNetwork? patternSubnet, out IPNetwork? patternIPv6Subnet);

            Assert.True(plain == pattern && subnet == patternSubnet && ipv6Subnet == patternIPv6Subnet, $"'{text}': {plain} {subnet} {ipv6Subnet}, the pattern {pattern} {patternSubnet} {patternIPv6Subnet}");
            parsed += plain ? 1 : 0;
        }

        Assert.InRange(parsed, 1_000, 10_000); // the keys made to look like keys are often valid ones

        string RandomText()
        {
            char[] key = new char[random.Next(1, 22)];
            for (int j = 0; j < key.Length; j++)
            {
                key[j] = alphabet[random.Next(alphabet.Length)];
            }

            return new string(key);
        }

        // Four numbers (some with a leading zero or out of range), a prefix length, now and then a character changed.
        string RandomKey()
        {
            int Octet() => random.Next(8) == 0 ? random.Next(256, 1000) : random.Next(256);
            string octet = random.Next(10) == 0 ? "0" + Octet() : Octet().ToString(System.Globalization.CultureInfo.InvariantCulture);
            char[] key = $"{Octet()}.{Octet()}.{octet}.{random.Next(2) * 16 * random.Next(2)}-{random.Next(0, 34)}".ToCharArray();
            if (random.Next(4) == 0)
            {
                key[random.Next(key.Length)] = alphabet[random.Next(alphabet.Length)];
            }

            return new string(key);
        }

        Assert.True(SubnetKey.TryParse("10.244.1.0-24", out IPNetwork? plainKey, out _));
        Assert.Equal(IPNetwork.Parse("10.244.1.0/24"), plainKey);
    }

    [Theory]
    [InlineData("10.244.1.0/24", null)]
    [InlineData("10.244.1.0/24", "fd00:10:244:1::/64")]
    [InlineData("0.0.0.0/1", "::/1")]
    [InlineData("255.255.255.254/31", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")]
    public void Formatted_keys_parse_back(string v4, string? v6)
    {
        IPNetwork subnet = IPNetwork.Parse(v4);
        IPNetwork? ipv6Subnet = v6 is null ? null : IPNetwork.Parse(v6);

        Assert.True(SubnetKey.TryParse(SubnetKey.Format(subnet, ipv6Subnet), out IPNetwork? parsed, out IPNetwork? parsed6));
        Assert.Equal(subnet, parsed);
        Assert.Equal(ipv6Subnet, parsed6);
    }
}
