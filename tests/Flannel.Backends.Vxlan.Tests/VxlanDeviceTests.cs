using System.Net;
using System.Net.Sockets;
using Flannel.Backends.Vxlan;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Subnets;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Backends.Vxlan.Tests;

public sealed class VxlanDeviceTests
{
    [Fact]
    public async Task Registration_creates_flannel_1_with_flannels_parameters_and_publishes_exact_backend_data()
    {
        await using VxlanHarness node = await VxlanHarness.StartAsync();

        LinkInfo device = node.Device;
        Assert.Equal("vxlan", device.Kind);
        Assert.Equal(1u, device.Vxlan!.Vni);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), device.Vxlan.Local);
        Assert.Equal(node.Underlay.Index, device.Vxlan.UnderlayIndex);
        Assert.Equal((ushort)8472, device.Vxlan.Port); // Port 0 leaves the kernel default
        Assert.False(device.Vxlan.Learning);
        Assert.False(device.Vxlan.Gbp);
        Assert.Equal(1450, device.Mtu);
        Assert.Equal(1450, node.Network.Mtu);
        Assert.True(device.IsUp);

        MacAddress mac = device.Address!.Value;
        Assert.True(mac.IsLocallyAdministered);
        Assert.False(mac.IsMulticast);
        LeaseAttributes attributes = node.Network.LeaseAttributes;
        Assert.Equal("vxlan", attributes.BackendType);
        Assert.Equal($"{{\"VNI\":1,\"VtepMAC\":\"{mac}\"}}", attributes.BackendData);
        Assert.Equal(IPAddress.Parse("198.18.0.1"), attributes.PublicIP);
        Assert.Null(attributes.BackendV6Data);
    }

    [Fact]
    public async Task Own_lease_puts_the_network_address_as_a_host_address_and_replaces_stale_cluster_addresses()
    {
        await using VxlanHarness node = await VxlanHarness.StartAsync();
        int index = node.Device.Index;
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == index && a.Address == IPNetwork.Parse("10.244.1.0/32"));

        await node.Network.ConfigureLeaseAsync(new Lease { Subnet = IPNetwork.Parse("10.244.7.0/24"), Attributes = node.Network.LeaseAttributes }, CancellationToken.None);

        AddressInfo only = Assert.Single(node.Netlink.Addresses, a => a.LinkIndex == index);
        Assert.Equal(IPNetwork.Parse("10.244.7.0/32"), only.Address);
    }

    [Fact]
    public async Task Options_from_the_Backend_object_reach_the_device()
    {
        await using VxlanHarness node = await VxlanHarness.StartAsync("""{"type":"vxlan","vni":4,"PORT":4789,"gbp":true,"Learning":true,"MTU":9000}""");

        LinkInfo device = node.Netlink.FindLink("flannel.4")!;
        Assert.Equal(4u, device.Vxlan!.Vni);
        Assert.Equal((ushort)4789, device.Vxlan.Port);
        Assert.True(device.Vxlan.Gbp);
        Assert.True(device.Vxlan.Learning);
        Assert.Equal(8950, device.Mtu); // configured underlay MTU minus 50
        Assert.StartsWith("{\"VNI\":4,", node.Network.LeaseAttributes.BackendData, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"VNI":"one"}""", "Backend.VNI")]
    [InlineData("""{"VNI":16777216}""", "Backend.VNI")]
    [InlineData("""{"Port":70000}""", "Backend.Port")]
    [InlineData("""{"DirectRouting":"yes"}""", "Backend.DirectRouting")]
    [InlineData("""{"MTU":-1}""", "Backend.MTU")]
    [InlineData("""[1]""", "Backend")]
    public void Bad_backend_options_are_rejected_naming_the_field_and_value(string json, string field)
    {
        NetworkConfigException error = Assert.Throws<NetworkConfigException>(() => VxlanConfig.Parse(json));
        Assert.Equal(field, error.Field);
        Assert.NotNull(error.Value);
        Assert.Contains(error.Value!, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Absent_options_take_flannels_defaults()
    {
        VxlanConfig config = VxlanConfig.Parse("""{"Type":"vxlan","Unknown":42}""");
        Assert.Equal(VxlanConfig.Default, config);
        Assert.Equal(1u, config.Vni);
    }

    [Fact]
    public async Task A_live_compatible_device_keeps_its_MAC_across_a_restart()
    {
        var netlink = new FakeNetlink();
        MacAddress first;
        await using (VxlanHarness node = await VxlanHarness.StartAsync(netlink: netlink))
        {
            first = node.Device.Address!.Value;
        }

        int indexBefore = netlink.FindLink("flannel.1")!.Index;
        await using VxlanHarness restarted = await VxlanHarness.StartAsync(netlink: netlink);
        Assert.Equal(first, restarted.Device.Address);
        Assert.Equal(indexBefore, restarted.Device.Index); // reused, not recreated
        Assert.Contains(first.ToString(), restarted.Network.LeaseAttributes.BackendData, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_device_the_MAC_the_store_remembers_is_reused()
    {
        var remembered = MacAddress.Parse("6a:11:22:33:44:55");
        var previous = new LeaseAttributes { BackendType = "vxlan", BackendData = $"{{\"VNI\":1,\"VtepMAC\":\"{remembered}\"}}" };

        await using VxlanHarness node = await VxlanHarness.StartAsync(previous: previous);

        Assert.Equal(remembered, node.Device.Address);
        Assert.Equal($"{{\"VNI\":1,\"VtepMAC\":\"{remembered}\"}}", node.Network.LeaseAttributes.BackendData);
    }

    [Fact]
    public async Task An_incompatible_device_is_replaced_but_keeps_its_MAC()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        // A VNI mismatch is incompatible by flannel's rule (a port mismatch is only when both sides set one).
        LinkInfo old = await netlink.CreateVxlanLinkAsync(new VxlanLinkSpec { Name = "flannel.1", Vni = 2, UnderlayIndex = eth0.Index }, CancellationToken.None);

        await using VxlanHarness node = await VxlanHarness.StartAsync(netlink: netlink);

        Assert.NotEqual(old.Index, node.Device.Index);
        Assert.Equal(1u, node.Device.Vxlan!.Vni);
        Assert.Equal(old.Address, node.Device.Address);
    }

    [Fact]
    public async Task A_MAC_rewritten_by_someone_else_fails_registration_with_flannels_message()
    {
        var netlink = new FakeNetlink { VxlanLinkRewriter = link => link with { Address = MacAddress.Parse("02:de:ad:be:ef:00") } };
        netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var backend = new VxlanBackend(netlink, Options.Create(new VxlanBackendOptions()), new FakeTimeProvider());

        InvalidOperationException error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await backend.RegisterNetworkAsync(new BackendContext { Config = VxlanHarness.Config(), ExternalInterface = VxlanHarness.External(netlink.FindLink("eth0")!) }, CancellationToken.None));
        Assert.Matches("^flannel.1's mac address wanted: [0-9a-f:]{17}, but got: 02:de:ad:be:ef:00$", error.Message);
    }

    [Fact]
    public async Task Dual_stack_creates_the_v6_device_with_IPv6_overhead_and_accept_ra_off()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var backend = new VxlanBackend(netlink, Options.Create(new VxlanBackendOptions()), new FakeTimeProvider(), sysctl: netlink);
        var external = VxlanHarness.External(eth0) with
        {
            IfaceIPv6Address = IPAddress.Parse("2001:db8::1"),
            PublicIPv6 = IPAddress.Parse("2001:db8::1"),
        };
        NetworkConfig config = VxlanHarness.Config() with { EnableIPv6 = true, IPv6Network = IPNetwork.Parse("fd00:10:244::/56"), IPv6SubnetLen = 64 };

        INetwork network = await backend.RegisterNetworkAsync(new BackendContext { Config = config, ExternalInterface = external }, CancellationToken.None);
        await network.ConfigureLeaseAsync(
            new Lease { Subnet = IPNetwork.Parse("10.244.1.0/24"), IPv6Subnet = IPNetwork.Parse("fd00:10:244:1::/64"), Attributes = network.LeaseAttributes },
            CancellationToken.None);

        LinkInfo v6 = netlink.FindLink("flannel-v6.1")!;
        Assert.Equal(IPAddress.Parse("2001:db8::1"), v6.Vxlan!.Local);
        Assert.Equal(1430, v6.Mtu); // 1500 - 70 over an IPv6 underlay
        Assert.Equal(1430, network.Mtu);
        Assert.Equal("0", netlink.Sysctls["net/ipv6/conf/flannel-v6.1/accept_ra"]);
        Assert.Contains(netlink.Addresses, a => a.LinkIndex == v6.Index && a.Address == IPNetwork.Parse("fd00:10:244:1::/128"));
        Assert.Equal($"{{\"VNI\":1,\"VtepMAC\":\"{v6.Address}\"}}", network.LeaseAttributes.BackendV6Data);
        Assert.Equal(IPAddress.Parse("2001:db8::1"), network.LeaseAttributes.PublicIPv6);
        Assert.NotEqual(netlink.FindLink("flannel.1")!.Address, v6.Address);

        // A dual-stack peer gets its objects on both devices.
        var channel = System.Threading.Channels.Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        var peerMac6 = MacAddress.Parse("0e:00:00:00:66:02");
        var peer = new Lease
        {
            Subnet = IPNetwork.Parse("10.244.2.0/24"),
            IPv6Subnet = IPNetwork.Parse("fd00:10:244:2::/64"),
            Attributes = new LeaseAttributes
            {
                PublicIP = IPAddress.Parse("198.18.0.2"),
                PublicIPv6 = IPAddress.Parse("2001:db8::2"),
                BackendType = "vxlan",
                BackendData = """{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}""",
                BackendV6Data = $$"""{"VNI":1,"VtepMAC":"{{peerMac6}}"}""",
            },
        };
        channel.Writer.TryWrite([new LeaseEvent(LeaseEventType.Added, peer)]);
        using var stop = new CancellationTokenSource();
        Task run = network.RunAsync(channel.Reader.ReadAllAsync(TestContext.Current.CancellationToken), stop.Token);
        await VxlanHarness.WaitUntilAsync(
            () => netlink.Routes.Any(r => r.Destination == IPNetwork.Parse("fd00:10:244:2::/64") && r.LinkIndex == v6.Index && r.OnLink && Equals(r.Gateway, IPAddress.Parse("fd00:10:244:2::")))
                && netlink.Routes.Any(r => r.Destination == IPNetwork.Parse("10.244.2.0/24")),
            "both families are routed");
        Assert.Contains(netlink.Neighbors, n => n.LinkIndex == v6.Index && n.Address.Equals(IPAddress.Parse("fd00:10:244:2::")) && n.LinkLayerAddress == peerMac6);
        Assert.Contains(netlink.FdbEntries, e => e.LinkIndex == v6.Index && e.MacAddress == peerMac6 && Equals(e.Destination, IPAddress.Parse("2001:db8::2")));
        channel.Writer.TryComplete();
        await stop.CancelAsync();
        await run;
    }
}
