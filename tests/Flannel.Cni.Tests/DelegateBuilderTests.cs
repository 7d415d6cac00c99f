using System.Text;

namespace Flannel.Cni.Tests;

public sealed class DelegateBuilderTests
{
    private const string KubeFlannelSubnetEnv = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

    private static string Build(string netconf, string subnetEnv = KubeFlannelSubnetEnv)
    {
        NetConf conf = NetConf.Parse(Encoding.UTF8.GetBytes(netconf));
        SubnetEnv env = SubnetEnv.Parse("/run/flannel/subnet.env", subnetEnv);
        return Encoding.UTF8.GetString(GoJson.Serialize(DelegateBuilder.Build(conf, env)));
    }

    [Fact]
    public void Kube_flannel_conflist_produces_flannels_stored_delegate_byte_for_byte()
    {
        // The flannel entry of kube-flannel.yml's cni-conf.json as a runtime passes it (name and cniVersion from the list).
        string stored = Build("""{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}""");
        Assert.Equal(
            """{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}""",
            stored);
    }

    [Fact]
    public void Ip_masq_is_the_inverse_of_flanneld_masquerading_and_delegate_values_win()
    {
        string noMasq = Build("""{"name":"n","type":"flannel"}""", KubeFlannelSubnetEnv.Replace("FLANNEL_IPMASQ=true", "FLANNEL_IPMASQ=false", StringComparison.Ordinal));
        Assert.Contains("\"ipMasq\":true", noMasq, StringComparison.Ordinal);
        Assert.DoesNotContain("cniVersion", noMasq, StringComparison.Ordinal);

        string own = Build("""{"name":"n","type":"flannel","delegate":{"ipMasq":true,"mtu":1400,"isGateway":false,"bridge":"br9"}}""");
        Assert.Equal(
            """{"bridge":"br9","ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":false,"mtu":1400,"name":"n","type":"bridge"}""",
            own);
    }

    [Fact]
    public void A_non_bridge_delegate_gets_no_is_gateway()
    {
        string ptp = Build("""{"name":"n","type":"flannel","delegate":{"type":"ptp"}}""");
        Assert.DoesNotContain("isGateway", ptp, StringComparison.Ordinal);
        Assert.Contains("\"type\":\"ptp\"", ptp, StringComparison.Ordinal);
    }

    [Fact]
    public void Ipam_is_based_on_the_netconf_ipam_with_ranges_replaced_and_routes_appended()
    {
        string stored = Build("""
            {"name":"n","type":"flannel","cniVersion":"1.0.0","runtimeConfig":{"portMappings":[]},
             "ipam":{"type":"host-local","dataDir":"/tmp/ipam","ranges":[[{"subnet":"192.168.0.0/24"}]],
                     "routes":[{"gw":"10.244.1.1","dst":"192.168.7.1/24","junk":1},{"dst":"fd00::/8","mtu":1400}]}}
            """);
        Assert.Equal(
            """{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"dataDir":"/tmp/ipam","ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"192.168.7.1/24","gw":"10.244.1.1"},{"dst":"fd00::/8","mtu":1400},{"dst":"10.244.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"n","runtimeConfig":{"portMappings":[]},"type":"bridge"}""",
            stored);
    }

    [Fact]
    public void Dual_stack_gets_a_range_set_and_routes_per_family()
    {
        string stored = Build("""{"name":"n","type":"flannel"}""",
            "FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16,10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
        Assert.Contains(
            """ "ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]],"routes":[{"dst":"10.244.0.0/16"},{"dst":"10.245.0.0/16"},{"dst":"fd00:10:244::/56"}],"type":"host-local"}""".TrimStart(),
            stored, StringComparison.Ordinal);
    }

    [Fact]
    public void Ipv6_only()
    {
        string stored = Build("""{"name":"n","type":"flannel"}""",
            "FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n");
        Assert.Contains(""" "ranges":[[{"subnet":"fd00:10:244:1::/64"}]],"routes":[{"dst":"fd00:10:244::/56"}]""".TrimStart(), stored, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"name":"n","delegate":{"name":"x"}}""", "'delegate' dictionary must not have 'name' field, it'll be set by flannel")]
    [InlineData("""{"name":"n","delegate":{"ipam":{}}}""", "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel")]
    [InlineData("""{"name":"n","delegate":{"type":7}}""", "'delegate' dictionary, if present, must have (string) 'type' field")]
    [InlineData("""{"name":"n","ipam":{"routes":[{"dst":"nope"}]}}""", "failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: invalid CIDR address: nope")]
    public void Bad_delegates_are_refused_with_flannels_messages(string netconf, string message)
    {
        CniException e = Assert.Throws<CniException>(() => Build(netconf));
        Assert.Equal(message, e.Message);
        Assert.Equal(999u, e.Code);
    }

    [Fact]
    public void Netconf_fields_match_case_insensitively_and_null_keeps_defaults()
    {
        NetConf conf = NetConf.Parse("""{"Name":"n","SUBNETFILE":"/x/s.env","dataDir":null,"Delegate":{"a":1}}"""u8);
        Assert.Equal("n", conf.Name);
        Assert.Equal("/x/s.env", conf.SubnetFile);
        Assert.Equal("/var/lib/cni/flannel", conf.DataDir);
        Assert.NotNull(conf.Delegate);
        Assert.Equal("0.1.0", conf.EffectiveCniVersion);
    }

    [Fact]
    public void Netconf_type_mismatches_are_reported()
    {
        CniException e = Assert.Throws<CniException>(() => NetConf.Parse("""{"name":"n","delegate":"bridge"}"""u8));
        Assert.Equal("loadFlannelNetConf failed: failed to load netconf: json: cannot unmarshal string into Go struct field NetConf.delegate of type map[string]interface {}", e.Message);
        CniException bad = Assert.Throws<CniException>(() => NetConf.Parse("""{"name":"""u8));
        Assert.Equal(6u, bad.Code);
    }
}
