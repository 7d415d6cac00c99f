using Flannel.Agent;
using Microsoft.Extensions.Options;

namespace Flannel.Agent.Tests;

public sealed class FlannelAgentOptionsValidatorTests
{
    private static ValidateOptionsResult Validate(Action<FlannelAgentOptions> change)
    {
        var options = new FlannelAgentOptions();
        change(options);
        return new FlannelAgentOptionsValidator().Validate(null, options);
    }

    [Fact]
    public void Defaults_are_flanneld_defaults_and_valid()
    {
        var options = new FlannelAgentOptions();
        Assert.Equal("/run/flannel/subnet.env", options.SubnetFile);
        Assert.Equal(60, options.SubnetLeaseRenewMarginMinutes);
        Assert.Equal(TimeSpan.FromSeconds(5), options.IptablesResync);
        Assert.True(options.IptablesForwardRules);
        Assert.False(options.IpMasq);
        Assert.True(Validate(_ => { }).Succeeded);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1440)]
    public void Renew_margin_out_of_range_is_rejected_with_flannels_text(int minutes)
    {
        ValidateOptionsResult result = Validate(o => o.SubnetLeaseRenewMarginMinutes = minutes);
        Assert.True(result.Failed);
        Assert.Contains("Invalid subnet-lease-renew-margin option, out of acceptable range", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_addresses_and_regexes_name_the_flag_and_value()
    {
        ValidateOptionsResult result = Validate(o =>
        {
            o.PublicIP = "fd00::1";
            o.PublicIPv6 = "not-an-ip";
            o.IfaceCanReach = "300.1.1.1";
            o.IfaceRegex.Add("([");
        });
        Assert.Contains("--public-ip=fd00::1: must be an IPv4 address", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("--public-ipv6=not-an-ip: not an IP address", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("--iface-can-reach=300.1.1.1", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("--iface-regex='(['", result.FailureMessage, StringComparison.Ordinal);
    }
}
