using System.Net;
using Flannel.Netlink;
using Flannel.Agent.InterfaceSelection;

namespace Flannel.Agent.Tests;

public sealed class ExternalInterfaceSelectorTests
{
    private static AgentTestNetlink TwoNics() => new AgentTestNetlink()
        .AddLink(1, "lo", 65536).AddAddress(1, "127.0.0.1/8")
        .AddLink(2, "eth0", 1500).AddAddress(2, "10.0.2.15/24").AddDefaultRoute(2, "10.0.2.2")
        .AddLink(3, "eth1", 9000).AddAddress(3, "198.18.0.2/24");

    private static ValueTask<InterfaceSelectionResult> Select(AgentTestNetlink netlink, InterfaceSelectionOptions options) =>
        new ExternalInterfaceSelector(netlink).SelectAsync(options, TestContext.Current.CancellationToken);

    [Fact]
    public async Task Without_flags_the_default_route_interface_is_used_and_the_reason_says_so()
    {
        InterfaceSelectionResult result = await Select(TwoNics(), new InterfaceSelectionOptions());
        Assert.Equal("eth0", result.Interface.Name);
        Assert.Equal(2, result.Interface.Index);
        Assert.Equal(IPAddress.Parse("10.0.2.15"), result.Interface.IfaceAddress);
        Assert.Equal(IPAddress.Parse("10.0.2.15"), result.Interface.PublicIP);
        Assert.Contains("default route (default via 10.0.2.2 dev eth0)", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Iface_by_name_wins_over_the_default_route()
    {
        InterfaceSelectionResult result = await Select(TwoNics(), new InterfaceSelectionOptions { Interfaces = ["eth1"] });
        Assert.Equal("eth1", result.Interface.Name);
        Assert.Equal(9000, result.Interface.Mtu);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), result.Interface.PublicIP);
        Assert.Contains("--iface=eth1", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Iface_values_are_tried_in_order_and_an_address_selects_its_owner()
    {
        InterfaceSelectionResult result = await Select(TwoNics(), new InterfaceSelectionOptions { Interfaces = ["eth9", "198.18.0.2", "eth0"] });
        Assert.Equal("eth1", result.Interface.Name);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), result.Interface.IfaceAddress);
        Assert.Contains("--iface=198.18.0.2 is an address of eth1", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regex_matches_addresses_before_names()
    {
        AgentTestNetlink netlink = TwoNics().AddLink(4, "198x", 1500).AddAddress(4, "192.0.2.9/24");
        InterfaceSelectionResult byAddress = await Select(netlink, new InterfaceSelectionOptions { InterfaceRegexes = [@"^198\.18\."] });
        Assert.Equal("eth1", byAddress.Interface.Name);
        Assert.Contains("matched address 198.18.0.2 of eth1", byAddress.Reason, StringComparison.Ordinal);

        InterfaceSelectionResult byName = await Select(netlink, new InterfaceSelectionOptions { InterfaceRegexes = ["^eth1$"] });
        Assert.Equal("eth1", byName.Interface.Name);
        Assert.Contains("matched interface name eth1", byName.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Iface_is_tried_before_regex_and_regex_before_can_reach()
    {
        AgentTestNetlink netlink = TwoNics();
        netlink.RouteGet = _ => new RouteInfo { Destination = IPNetwork.Parse("198.18.0.9/32"), LinkIndex = 3, PreferredSource = IPAddress.Parse("198.18.0.2") };
        InterfaceSelectionResult result = await Select(netlink, new InterfaceSelectionOptions
        {
            Interfaces = ["nope"],
            InterfaceRegexes = ["^nothing$"],
            CanReach = IPAddress.Parse("198.18.0.9"),
        });
        Assert.Equal("eth1", result.Interface.Name);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), result.Interface.IfaceAddress);
        Assert.Contains("--iface-can-reach 198.18.0.9", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Nothing_matching_fails_with_every_reason_and_the_available_interfaces()
    {
        var error = await Assert.ThrowsAsync<InterfaceSelectionException>(async () =>
            await Select(TwoNics(), new InterfaceSelectionOptions { Interfaces = ["eth7"], InterfaceRegexes = ["^wlan"] }));
        Assert.Contains("Failed to find interface to use that matches the interfaces and/or regexes provided", error.Message, StringComparison.Ordinal);
        Assert.Contains("--iface=eth7: no such interface", error.Message, StringComparison.Ordinal);
        Assert.Contains("--iface-regex '^wlan'", error.Message, StringComparison.Ordinal);
        Assert.Contains("eth1:[198.18.0.2]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_public_ip_without_iface_must_be_local_and_selects_its_owner()
    {
        InterfaceSelectionResult result = await Select(TwoNics(), new InterfaceSelectionOptions { PublicIP = IPAddress.Parse("198.18.0.2") });
        Assert.Equal("eth1", result.Interface.Name);

        var error = await Assert.ThrowsAsync<InterfaceSelectionException>(async () =>
            await Select(TwoNics(), new InterfaceSelectionOptions { PublicIP = IPAddress.Parse("203.0.113.1") }));
        Assert.Contains("Failed to find any valid interface to use", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_non_local_public_ip_is_allowed_with_iface()
    {
        InterfaceSelectionResult result = await Select(TwoNics(), new InterfaceSelectionOptions { Interfaces = ["eth1"], PublicIP = IPAddress.Parse("203.0.113.1") });
        Assert.Equal(IPAddress.Parse("198.18.0.2"), result.Interface.IfaceAddress);
        Assert.Equal(IPAddress.Parse("203.0.113.1"), result.Interface.PublicIP);
        Assert.Contains("from --public-ip", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Address_preference_global_then_permanent_then_non_temporary_and_never_deprecated()
    {
        AgentTestNetlink netlink = new AgentTestNetlink()
            .AddLink(2, "eth0")
            .AddAddress(2, "169.254.1.1/16", flags: AddressFlags.Permanent)     // link-local
            .AddAddress(2, "198.18.0.9/24", flags: AddressFlags.Permanent | AddressFlags.Deprecated)
            .AddAddress(2, "198.18.0.7/24", flags: AddressFlags.Temporary)      // dynamic
            .AddAddress(2, "198.18.0.6/24", flags: AddressFlags.None)           // dynamic
            .AddAddress(2, "198.18.0.5/24", flags: AddressFlags.Permanent)
            .AddDefaultRoute(2, "198.18.0.1");
        InterfaceSelectionResult result = await Select(netlink, new InterfaceSelectionOptions());
        Assert.Equal(IPAddress.Parse("198.18.0.5"), result.Interface.IfaceAddress);

        netlink.Addresses.RemoveAll(a => a.Local.Equals(IPAddress.Parse("198.18.0.5")));
        Assert.Equal(IPAddress.Parse("198.18.0.6"), (await Select(netlink, new InterfaceSelectionOptions())).Interface.IfaceAddress);
        netlink.Addresses.RemoveAll(a => a.Local.Equals(IPAddress.Parse("198.18.0.6")));
        Assert.Equal(IPAddress.Parse("198.18.0.7"), (await Select(netlink, new InterfaceSelectionOptions())).Interface.IfaceAddress);
        netlink.Addresses.RemoveAll(a => a.Local.Equals(IPAddress.Parse("198.18.0.7")));
        Assert.Equal(IPAddress.Parse("169.254.1.1"), (await Select(netlink, new InterfaceSelectionOptions())).Interface.IfaceAddress);
    }

    [Fact]
    public async Task Dual_stack_default_routes_must_agree()
    {
        AgentTestNetlink netlink = TwoNics().AddAddress(3, "fd00::2/64").AddDefaultRoute(3, "fd00::1");
        var error = await Assert.ThrowsAsync<InterfaceSelectionException>(async () =>
            await Select(netlink, new InterfaceSelectionOptions { EnableIPv6 = true }));
        Assert.Equal("v6 default route interface eth1 must be the same with v4 default route interface eth0", error.Message);
    }

    [Fact]
    public async Task No_default_route_is_a_clear_error()
    {
        AgentTestNetlink netlink = new AgentTestNetlink().AddLink(2, "eth0").AddAddress(2, "198.18.0.2/24");
        var error = await Assert.ThrowsAsync<InterfaceSelectionException>(async () => await Select(netlink, new InterfaceSelectionOptions()));
        Assert.Contains("no IPv4 default route", error.Message, StringComparison.Ordinal);
    }
}
