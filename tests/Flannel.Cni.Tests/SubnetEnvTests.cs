namespace Flannel.Cni.Tests;

public sealed class SubnetEnvTests
{
    [Fact]
    public void Parses_flanneld_subnet_env()
    {
        SubnetEnv env = SubnetEnv.Parse("s", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
        Assert.Equal("10.244.0.0/16", Assert.Single(env.Networks).ToString());
        Assert.Equal("10.244.1.0/24", env.Subnet.ToString());
        Assert.Null(env.IPv6Subnet);
        Assert.Equal(1450u, env.Mtu);
        Assert.True(env.IPMasq);
    }

    [Fact]
    public void Reads_the_variables_as_flanneld_reads_them_on_restart()
    {
        // One reader for both (src/Shared/SubnetEnvText.cs): comments, export, quotes, CRLF, a later line wins.
        SubnetEnv env = SubnetEnv.Parse("s", "# written by hand\r\nexport FLANNEL_NETWORK=\"10.0.0.0/8\"\r\nFLANNEL_SUBNET=10.9.9.1/24\nFLANNEL_SUBNET=10.0.1.1/24\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ='true'\n");
        Assert.Equal("10.0.0.0/8", Assert.Single(env.Networks).ToString());
        Assert.Equal("10.0.1.0/24", env.Subnet.ToString());
        Assert.Equal(1400u, env.Mtu);
        Assert.True(env.IPMasq);
    }

    [Fact]
    public void Ipmasq_is_true_only_for_the_exact_word()
    {
        Assert.False(SubnetEnv.Parse("s", "FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.0.1.1/24\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=TRUE").IPMasq);
    }

    [Fact]
    public void Missing_variables_are_listed_as_flannel_does()
    {
        FormatException e = Assert.Throws<FormatException>(() => SubnetEnv.Parse("/run/flannel/subnet.env", "FLANNEL_MTU=1450\n"));
        Assert.Equal("/run/flannel/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ", e.Message);
    }

    [Theory]
    [InlineData("FLANNEL_SUBNET=10.244.1.1", "invalid CIDR address: 10.244.1.1")]
    [InlineData("FLANNEL_SUBNET=010.244.1.1/24", "invalid CIDR address: 010.244.1.1/24")]
    [InlineData("FLANNEL_NETWORK=10.0.0.0/33", "invalid CIDR address: 10.0.0.0/33")]
    [InlineData("FLANNEL_MTU=abc", "strconv.ParseUint: parsing \"abc\": invalid syntax")]
    [InlineData("FLANNEL_MTU=4294967296", "strconv.ParseUint: parsing \"4294967296\": value out of range")]
    public void Bad_values_are_reported(string line, string message) =>
        Assert.Equal(message, Assert.Throws<FormatException>(() => SubnetEnv.Parse("s", line)).Message);

    [Fact]
    public void A_missing_file_gives_flannels_hint()
    {
        CniException e = Assert.Throws<CniException>(() => SubnetEnv.Load("/nonexistent/flannel/subnet.env"));
        Assert.Equal("failed to load flannel 'subnet.env' file: open /nonexistent/flannel/subnet.env: no such file or directory. Check the flannel pod log for this node.", e.Message);
    }
}
