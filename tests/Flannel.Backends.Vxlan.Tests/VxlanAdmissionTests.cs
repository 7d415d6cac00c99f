using System.Net;
using Flannel.Netlink;
using Flannel.Subnets;
using static Flannel.Backends.Vxlan.Tests.VxlanHarness;

namespace Flannel.Backends.Vxlan.Tests;

/// <summary>The vxlan backend's admission rules (a unicast non-zero VtepMAC, our VNI) and its garbage collection of every route through its device.</summary>
public sealed class VxlanAdmissionTests
{
    [Theory]
    [InlineData("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}""", null, null)]
    [InlineData("""{"vni":1,"vtepmac":"0e:00:00:00:00:02"}""", null, null)] // Go's decoder ignores case
    [InlineData("""{"VNI":1,"VtepMAC":"01:00:5e:00:00:55"}""", "vtep-mac", "BackendData.VtepMAC '01:00:5e:00:00:55' is a multicast address, not a VTEP")]
    [InlineData("""{"VNI":1,"VtepMAC":"ff:ff:ff:ff:ff:ff"}""", "vtep-mac", "BackendData.VtepMAC 'ff:ff:ff:ff:ff:ff' is a multicast address, not a VTEP")]
    [InlineData("""{"VNI":1,"VtepMAC":"00:00:00:00:00:00"}""", "vtep-mac", "BackendData.VtepMAC '00:00:00:00:00:00' is not a MAC address of the form aa:bb:cc:dd:ee:ff")]
    [InlineData("""{"VNI":1}""", "vtep-mac", """BackendData '{"VNI":1}' has no VtepMAC""")]
    [InlineData(null, "vtep-mac", "BackendData is missing, so the peer's VtepMAC is unknown")]
    [InlineData("""{"VNI":7,"VtepMAC":"0e:00:00:00:00:02"}""", "vni", "BackendData.VNI 7 is not this network's VNI 1")]
    [InlineData("""{"VtepMAC":"0e:00:00:00:00:02"}""", "vni", "BackendData.VNI (missing) is not this network's VNI 1")]
    [InlineData("""{"VNI":"1","VtepMAC":"0e:00:00:00:00:02"}""", "vni", "BackendData.VNI (missing) is not this network's VNI 1")]
    [InlineData("""{"VNI":{"x":[1]},"VtepMAC":"0e:00:00:00:00:02"}""", "vni", "BackendData.VNI (missing) is not this network's VNI 1")]
    [InlineData("""{"VNI":1,"VtepMAC":{"a": [1, "b"]}}""", "vtep-mac", """BackendData.VtepMAC '{"a": [1, "b"]}' is not a MAC address of the form aa:bb:cc:dd:ee:ff""")]
    [InlineData("""{"VNI":1,"VtepMAC":null}""", "vtep-mac", "BackendData.VtepMAC 'null' is not a MAC address of the form aa:bb:cc:dd:ee:ff")]
    [InlineData("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02:00:00:00:00:00:00:00:00:00:00:00:00"}""", "vtep-mac", "BackendData.VtepMAC '0e:00:00:00:00:02:00:00:00:00:00:00:00:00:00:00:00:00' is not a MAC address of the form aa:bb:cc:dd:ee:ff")]
    [InlineData("""["VtepMAC","0e:00:00:00:00:02"]""", "vtep-mac", """BackendData '["VtepMAC","0e:00:00:00:00:02"]' has no VtepMAC""")]
    [InlineData("""{"Vtep\u004dAC":"0e:00:00:00:00:02","V\u004eI":1}""", null, null)] // escaped names
    [InlineData("""{"VNı":1,"VtepMAC":"0e:00:00:00:00:02"}""", "vni", "BackendData.VNI (missing) is not this network's VNI 1")] // a dotless ı is no I, for Go either
    // A later duplicate overwrites an earlier one, in any case, as in Go's decoder (and LeaseJson).
    [InlineData("""{"VNI":7,"vtepmac":"01:00:5e:00:00:55","VtepMAC":"0e:00:00:00:00:02","vni":1}""", null, null)]
    [InlineData("""{"VNI":1,"vtepmac":"0e:00:00:00:00:02","VtepMAC":"01:00:5e:00:00:55"}""", "vtep-mac", "BackendData.VtepMAC '01:00:5e:00:00:55' is a multicast address, not a VTEP")]
    [InlineData("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02","VNI":7}""", "vni", "BackendData.VNI 7 is not this network's VNI 1")]
    [InlineData("""{"VNI":1,"Other":{"VtepMAC":"0e:00:00:00:00:02"}}""", "vtep-mac", """BackendData '{"VNI":1,"Other":{"VtepMAC":"0e:00:00:00:00:02"}}' has no VtepMAC""")]
    public void BackendData_rules(string? data, string? rule, string? reason)
    {
        LeaseRejection? rejection = VxlanBackendData.Check(data, "BackendData", vni: 1);

        Assert.Equal(rule, rejection?.Rule);
        Assert.Equal(reason, rejection?.Reason);
    }

    [Theory]
    [InlineData("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"} {}""")] // a second value
    [InlineData("{\"VNI\":1,\"VtepMAC\":\"0e:00:00:00:00:02\"")] // cut short
    [InlineData("""{"VNI":1,"VtepMAC":"0e:00:00:00:00:02",}""")] // a trailing comma
    [InlineData("""{"VNI":1 /* one */,"VtepMAC":"0e:00:00:00:00:02"}""")] // a comment
    [InlineData("""[1, 2""")]
    public void BackendData_that_is_not_one_JSON_value_is_rejected_with_the_parser_s_reason(string data)
    {
        LeaseRejection? rejection = VxlanBackendData.Check(data, "BackendData", vni: 1);

        Assert.Equal("vtep-mac", rejection?.Rule);
        Assert.StartsWith($"BackendData '{data}' is not valid JSON: ", rejection?.Reason, StringComparison.Ordinal);
        Assert.Contains("LineNumber: 0", rejection?.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_network_checks_the_data_of_each_family_it_runs_and_leaves_other_backends_alone()
    {
        await using VxlanHarness node = await StartAsync();
        var rules = Assert.IsAssignableFrom<ILeaseAdmission>(node.Network);

        Assert.Null(rules.Check(Peer(2)));
        Assert.Equal("vtep-mac", rules.Check(Peer(3, mac: "01:00:5e:00:00:55"))?.Rule);
        Assert.Equal("vni", rules.Check(Peer(4) with { Attributes = Peer(4).Attributes with { BackendData = """{"VNI":2,"VtepMAC":"0e:00:00:00:00:04"}""" } })?.Rule);
        Assert.Null(rules.Check(Peer(5, backendType: "host-gw")));

        // A v4-only node does not judge the IPv6 half.
        Assert.Null(rules.Check(Peer(6) with { IPv6Subnet = IPNetwork.Parse("fd00:10:244:6::/64"), Attributes = Peer(6).Attributes with { BackendV6Data = """{"VNI":9}""" } }));
    }

    [Fact]
    public async Task The_network_checks_our_configured_VNI()
    {
        await using VxlanHarness node = await StartAsync("""{"Type":"vxlan","VNI":4096}""");
        var rules = (ILeaseAdmission)node.Network;

        Assert.Equal("BackendData.VNI 1 is not this network's VNI 4096", rules.Check(Peer(2))?.Reason);
        Assert.Null(rules.Check(Peer(2) with { Attributes = Peer(2).Attributes with { BackendData = """{"VNI":4096,"VtepMAC":"0e:00:00:00:00:02"}""" } }));
    }

    [Fact]
    public async Task Startup_garbage_collects_every_route_of_ours_through_the_device_even_outside_the_network()
    {
        var netlink = new Flannel.Testing.FakeNetlink.FakeNetlink();
        int device;
        await using (VxlanHarness first = await StartAsync(netlink: netlink))
        {
            await first.SendAsync(Added(Peer(2)));
            await WaitUntilAsync(() => first.IsProgrammed(2), "peer 2 is programmed");
            device = first.Device.Index;
        }

        // What an agent without admission (or with another Network) left behind: a peer outside the network and a
        // key as wide as 10.0.0.0/8, both through flannel.1 with our protocol.
        var outside = new RouteSpec { Destination = IPNetwork.Parse("192.168.7.0/24"), Gateway = IPAddress.Parse("192.168.7.0"), LinkIndex = device, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel };
        var wide = new RouteSpec { Destination = IPNetwork.Parse("10.0.0.0/8"), Gateway = IPAddress.Parse("10.0.0.0"), LinkIndex = device, OnLink = true, Protocol = RouteDefaults.ProtocolFlannel };
        netlink.AddForeignRoute(outside);
        netlink.AddForeignRoute(wide);

        await using VxlanHarness second = await StartAsync(netlink: netlink);
        await second.SendAsync(Added(Peer(2)));
        await WaitUntilAsync(() => !netlink.Routes.Any(r => r.Destination == outside.Destination || r.Destination == wide.Destination), "the leftover routes are collected");

        Assert.True(second.IsProgrammed(2));
    }
}
