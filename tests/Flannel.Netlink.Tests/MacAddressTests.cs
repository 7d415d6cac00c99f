using Flannel.Netlink;

namespace Flannel.Netlink.Tests;

public sealed class MacAddressTests
{
    [Theory]
    [InlineData("c6:d2:32:6f:8f:44", "c6:d2:32:6f:8f:44")]
    [InlineData("C6:D2:32:6F:8F:44", "c6:d2:32:6f:8f:44")]
    [InlineData("0e-2a-00-00-00-01", "0e:2a:00:00:00:01")]
    public void Parses_and_formats_lower_case_with_colons(string text, string expected)
    {
        Assert.Equal(expected, MacAddress.Parse(text).ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("c6:d2:32:6f:8f")]
    [InlineData("c6:d2:32:6f:8f:4g")]
    [InlineData("c6:d2-32:6f:8f:44")]
    [InlineData("c6d2326f8f44")]
    public void Rejects_malformed_text_and_quotes_it(string text)
    {
        Assert.False(MacAddress.TryParse(text, out _));
        FormatException error = Assert.Throws<FormatException>(() => MacAddress.Parse(text));
        Assert.Contains($"'{text}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_addresses_are_locally_administered_unicast_like_flannels()
    {
        for (int i = 0; i < 256; i++)
        {
            MacAddress mac = MacAddress.NewRandomLocal();
            Assert.True(mac.IsLocallyAdministered);
            Assert.False(mac.IsMulticast);
        }
    }

    [Fact]
    public void Bytes_round_trip()
    {
        byte[] bytes = [0xc6, 0xd2, 0x32, 0x6f, 0x8f, 0x44];
        Assert.Equal(bytes, new MacAddress(bytes).GetBytes());
        Assert.Equal(MacAddress.Parse("c6:d2:32:6f:8f:44"), new MacAddress(bytes));
    }
}
