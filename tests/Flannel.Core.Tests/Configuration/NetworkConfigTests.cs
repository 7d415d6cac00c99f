using System.Net;
using Flannel.Configuration;

namespace Flannel.Core.Tests.Configuration;

public sealed class NetworkConfigParseTests
{
    [Fact]
    public void Parses_every_field_with_case_insensitive_keys_and_ignores_unknown_keys()
    {
        NetworkConfig config = NetworkConfig.Parse("""
            {
              "network": "10.244.0.0/16",
              "IPV6NETWORK": "fd00:10:244::/56",
              "enableipv4": true,
              "EnableIPv6": true,
              "EnableNFTables": true,
              "subnetLen": 25,
              "SubnetMin": "10.244.8.0",
              "SUBNETMAX": "10.244.9.128",
              "IPv6SubnetLen": 80,
              "IPv6SubnetMin": "fd00:10:244:1::",
              "IPv6SubnetMax": "fd00:10:244:ff::",
              "Networks": ["10.0.0.0/8"],
              "SomethingElse": {"nested": [1, 2, 3]},
              "backend": { "type": "VXLAN",  "VNI": 4,
                           "Port": 4789 }
            }
            """);

        Assert.Equal(IPNetwork.Parse("10.244.0.0/16"), config.Network);
        Assert.Equal(IPNetwork.Parse("fd00:10:244::/56"), config.IPv6Network);
        Assert.True(config.EnableIPv4);
        Assert.True(config.EnableIPv6);
        Assert.True(config.EnableNFTables);
        Assert.Equal(25, config.SubnetLen);
        Assert.Equal(IPAddress.Parse("10.244.8.0"), config.SubnetMin);
        Assert.Equal(IPAddress.Parse("10.244.9.128"), config.SubnetMax);
        Assert.Equal(80, config.IPv6SubnetLen);
        Assert.Equal(IPAddress.Parse("fd00:10:244:1::"), config.IPv6SubnetMin);
        Assert.Equal(IPAddress.Parse("fd00:10:244:ff::"), config.IPv6SubnetMax);
        Assert.Equal("vxlan", config.BackendType);
        Assert.Equal("""{"type":"VXLAN","VNI":4,"Port":4789}""", config.Backend);
    }

    [Fact]
    public void Parse_defaults_EnableIPv4_true_and_everything_else_unset()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16"}""");

        Assert.True(config.EnableIPv4);
        Assert.False(config.EnableIPv6);
        Assert.False(config.EnableNFTables);
        Assert.Equal(0, config.SubnetLen);
        Assert.Null(config.SubnetMin);
        Assert.Null(config.SubnetMax);
        Assert.Null(config.IPv6Network);
        Assert.Equal(0, config.IPv6SubnetLen);
        Assert.Null(config.IPv6SubnetMin);
        Assert.Null(config.IPv6SubnetMax);
    }

    [Theory]
    [InlineData("""{"Network":"10.244.0.0/16"}""")]
    [InlineData("""{"Network":"10.244.0.0/16","Backend":null}""")]
    public void Backend_absent_means_vxlan(string json)
    {
        NetworkConfig config = NetworkConfig.Parse(json);
        Assert.Equal("vxlan", config.BackendType);
        Assert.Null(config.Backend);
    }

    [Fact]
    public void Host_gw_backend_is_kept_raw_and_compact()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16","Backend":{ "Type" : "host-gw" }}""");
        Assert.Equal("host-gw", config.BackendType);
        Assert.Equal("""{"Type":"host-gw"}""", config.Backend);
    }

    [Fact]
    public void Host_bits_of_the_network_are_dropped_as_go_ParseCIDR_does()
    {
        Assert.Equal(IPNetwork.Parse("10.244.0.0/16"), NetworkConfig.Parse("""{"Network":"10.244.3.7/16"}""").Network);
    }

    [Fact]
    public void Json_null_leaves_a_field_at_its_default()
    {
        NetworkConfig config = NetworkConfig.Parse("""{"Network":"10.244.0.0/16","EnableIPv4":null,"SubnetLen":null}""");
        Assert.True(config.EnableIPv4);
        Assert.Equal(0, config.SubnetLen);
    }

    [Theory]
    [InlineData("udp", "udp")]
    [InlineData("UDP", "udp")]
    [InlineData("carrier-pigeon", "carrier-pigeon")]
    [InlineData("Static-Routes", "static-routes")]
    public void Any_backend_type_is_accepted_because_backends_are_plugins_the_agent_checks(string type, string expected)
    {
        NetworkConfig config = NetworkConfig.Parse($$$"""{"Network":"10.244.0.0/16","Backend":{"Type":"{{{type}}}","Gateway":"198.18.0.254"}}""");
        Assert.Equal(expected, config.BackendType);
        Assert.Equal($$$"""{"Type":"{{{type}}}","Gateway":"198.18.0.254"}""", config.Backend);
    }

    [Theory]
    [InlineData("alloc")]
    [InlineData("extension")]
    [InlineData("Extension")]
    [InlineData("wireguard")]
    [InlineData("WireGuard")]
    public void Alloc_extension_and_wireguard_are_accepted_with_their_backend_object_kept_for_the_backend(string type)
    {
        NetworkConfig config = NetworkConfig.Parse($$$"""{"Network":"10.244.0.0/16","Backend":{"Type":"{{{type}}}","SubnetAddCommand":"ip route replace $SUBNET via $PUBLIC_IP"}}""");
        Assert.Equal(type.ToLowerInvariant(), config.BackendType);
        Assert.Equal($$$"""{"Type":"{{{type}}}","SubnetAddCommand":"ip route replace $SUBNET via $PUBLIC_IP"}""", config.Backend);
    }

    [Theory]
    [InlineData("""{"Port": 8472}""", """Backend: {"Port":8472} has no "Type"; built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    [InlineData("""{"Type": ""}""", """Backend: {"Type":""} has no "Type"; built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    [InlineData("""{"Type": null}""", """Backend: {"Type":null} has no "Type"; built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    // flannel's texts: parseBackendType wraps the error of json.Unmarshal into struct { Type string } (go1.19 output).
    [InlineData("""{"Type": 7}""", """Backend.Type: 7 is not a string ("error decoding Backend property of config: json: cannot unmarshal number into Go struct field .Type of type string"); built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    [InlineData("""{"type": true}""", """Backend.Type: true is not a string ("error decoding Backend property of config: json: cannot unmarshal bool into Go struct field .Type of type string"); built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    [InlineData("""{"Type": {}}""", """Backend.Type: {} is not a string ("error decoding Backend property of config: json: cannot unmarshal object into Go struct field .Type of type string"); built-in backend types: vxlan, host-gw, wireguard, alloc, extension""")]
    [InlineData("\"vxlan\"", """Backend: "vxlan" is not a JSON object ("error decoding Backend property of config: json: cannot unmarshal string into Go value of type struct { Type string }")""")]
    [InlineData("7", """Backend: 7 is not a JSON object ("error decoding Backend property of config: json: cannot unmarshal number into Go value of type struct { Type string }")""")]
    [InlineData("[1]", """Backend: [1] is not a JSON object ("error decoding Backend property of config: json: cannot unmarshal array into Go value of type struct { Type string }")""")]
    [InlineData("true", """Backend: true is not a JSON object ("error decoding Backend property of config: json: cannot unmarshal bool into Go value of type struct { Type string }")""")]
    public void Malformed_backend_is_rejected(string backend, string message)
    {
        var ex = Assert.Throws<NetworkConfigException>(
            () => NetworkConfig.Parse($$"""{"Network":"10.244.0.0/16","Backend":{{backend}}}"""));
        Assert.Equal(message, ex.Message);
    }

    // The quoted texts are flannel's (IP4Net/IP6Net/IP4 UnmarshalJSON and Go's net.ParseCIDR, encoding/json), checked
    // against go1.19's net and encoding/json packages.
    [Theory]
    [InlineData("""{"Network":"10.0.0.0/33"}""", "Network", """Network: "10.0.0.0/33" is not a valid IPv4 CIDR ("invalid CIDR address: 10.0.0.0/33")""")]
    [InlineData("""{"Network":"fd00::/64"}""", "Network", """Network: "fd00::/64" is not a valid IPv4 CIDR ("invalid IPv4 CIDR format")""")]
    [InlineData("""{"Network":"10.244/16"}""", "Network", """Network: "10.244/16" is not a valid IPv4 CIDR ("invalid CIDR address: 10.244/16")""")]
    [InlineData("""{"Network":"010.244.0.0/16"}""", "Network", """Network: "010.244.0.0/16" is not a valid IPv4 CIDR ("invalid CIDR address: 010.244.0.0/16")""")]
    [InlineData("""{"Network":"10.244.0.0"}""", "Network", """Network: "10.244.0.0" is not a valid IPv4 CIDR ("invalid CIDR address: 10.244.0.0")""")]
    [InlineData("""{"Network":"10.244.0.0\/16"}""", "Network", """Network: "10.244.0.0\/16" is not a valid IPv4 CIDR ("invalid CIDR address: 10.244.0.0\/16")""")]
    [InlineData("""{"Network":16}""", "Network", """Network: 16 is not a valid IPv4 CIDR ("invalid CIDR address: 16")""")]
    [InlineData("""{"IPv6Network":"10.0.0.0/8"}""", "IPv6Network", """IPv6Network: "10.0.0.0/8" is not a valid IPv6 CIDR ("invalid IPv6 CIDR format")""")]
    [InlineData("""{"IPv6Network":"fd00::/129"}""", "IPv6Network", """IPv6Network: "fd00::/129" is not a valid IPv6 CIDR ("invalid CIDR address: fd00::/129")""")]
    [InlineData("""{"SubnetMin":"10.244.300.0"}""", "SubnetMin", """SubnetMin: "10.244.300.0" is not a valid IPv4 address ("invalid IP address format")""")]
    [InlineData("""{"SubnetMax":"fd00::1"}""", "SubnetMax", """SubnetMax: "fd00::1" is not a valid IPv4 address ("invalid IPv4 address format")""")]
    [InlineData("""{"IPv6SubnetMin":"10.0.0.1"}""", "IPv6SubnetMin", """IPv6SubnetMin: "10.0.0.1" is not a valid IPv6 address ("invalid IPv6 address format")""")]
    [InlineData("""{"IPv6SubnetMax":"fd00::zz"}""", "IPv6SubnetMax", """IPv6SubnetMax: "fd00::zz" is not a valid IPv6 address ("invalid IP address format")""")]
    [InlineData("""{"SubnetMin":1}""", "SubnetMin", """SubnetMin: 1 is not a valid IPv4 address ("invalid IP address format")""")]
    [InlineData("""{"EnableIPv6":"yes"}""", "EnableIPv6", """EnableIPv6: "yes" is not a boolean ("json: cannot unmarshal string into Go struct field Config.EnableIPv6 of type bool")""")]
    [InlineData("""{"EnableIPv4":1}""", "EnableIPv4", """EnableIPv4: 1 is not a boolean ("json: cannot unmarshal number into Go struct field Config.EnableIPv4 of type bool")""")]
    [InlineData("""{"EnableNFTables":"true"}""", "EnableNFTables", """EnableNFTables: "true" is not a boolean ("json: cannot unmarshal string into Go struct field Config.EnableNFTables of type bool")""")]
    [InlineData("""{"SubnetLen":-1}""", "SubnetLen", """SubnetLen: -1 is not a valid prefix length ("json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint")""")]
    [InlineData("""{"SubnetLen":24.5}""", "SubnetLen", """SubnetLen: 24.5 is not a valid prefix length ("json: cannot unmarshal number 24.5 into Go struct field Config.SubnetLen of type uint")""")]
    [InlineData("""{"subnetlen":[1]}""", "SubnetLen", """SubnetLen: [1] is not a valid prefix length ("json: cannot unmarshal array into Go struct field Config.SubnetLen of type uint")""")]
    [InlineData("""{"IPv6SubnetLen":"64"}""", "IPv6SubnetLen", """IPv6SubnetLen: "64" is not a valid prefix length ("json: cannot unmarshal string into Go struct field Config.IPv6SubnetLen of type uint")""")]
    public void Parse_errors_name_the_field_and_the_value(string json, string field, string message)
    {
        var ex = Assert.Throws<NetworkConfigException>(() => NetworkConfig.Parse(json));
        Assert.Equal(message, ex.Message);
        Assert.Equal(field, ex.Field);
    }

    [Theory]
    [InlineData("10.0.0.0/016", "10.0.0.0/16")]
    [InlineData("10.1.2.3/8", "10.0.0.0/8")]
    public void Network_is_read_as_Go_reads_a_CIDR(string text, string expected)
    {
        Assert.Equal(IPNetwork.Parse(expected), NetworkConfig.Parse($$"""{"Network":"{{text}}"}""").Network);
    }

    [Fact]
    public void A_huge_SubnetLen_reaches_flannels_range_check()
    {
        var ex = Assert.Throws<NetworkConfigException>(
            () => NetworkConfig.Parse("""{"Network":"10.244.0.0/16","SubnetLen":4294967296}""").Validate());
        Assert.Equal("SubnetLen must be less than /31", ex.Message);
    }

    [Theory]
    [InlineData("10")]
    [InlineData("10.1.2")]
    [InlineData("010.0.0.0")]
    [InlineData("0x0a.0.0.0")]
    [InlineData(" 10.0.0.0")]
    public void Addresses_go_rejects_are_rejected(string address)
    {
        Assert.Throws<NetworkConfigException>(() => NetworkConfig.Parse($$"""{"SubnetMin":"{{address}}"}"""));
        Assert.Throws<NetworkConfigException>(() => NetworkConfig.Parse($$"""{"Network":"{{address}}/16"}"""));
    }

    [Theory]
    [InlineData("", "the network config is not valid JSON")]
    [InlineData("{\"Network\":", "the network config is not valid JSON")]
    [InlineData("[]", "the network config must be a JSON object, not an array (\"json: cannot unmarshal array into Go value of type subnet.Config\")")]
    [InlineData("\"x\"", "the network config must be a JSON object, not a string (\"json: cannot unmarshal string into Go value of type subnet.Config\")")]
    public void Malformed_json_is_reported(string json, string start)
    {
        var ex = Assert.Throws<NetworkConfigException>(() => NetworkConfig.Parse(json));
        Assert.StartsWith(start, ex.Message, StringComparison.Ordinal);
    }
}

public sealed class NetworkConfigValidateTests
{
    private static NetworkConfig Validate(string json) => NetworkConfig.Parse(json).Validate();

    private static void AssertError(string json, string message, string? field = null)
    {
        var ex = Assert.Throws<NetworkConfigException>(() => Validate(json));
        Assert.Equal(message, ex.Message);
        if (field is not null)
        {
            Assert.Equal(field, ex.Field);
        }
    }

    // ---- IPv4 defaults ----

    [Fact]
    public void Default_for_a_slash_16_is_slash_24_from_the_second_to_the_last_subnet()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16"}""");
        Assert.Equal(24, config.SubnetLen);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), config.SubnetMin);
        Assert.Equal(IPAddress.Parse("10.244.255.0"), config.SubnetMax);
    }

    [Theory]
    [InlineData("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0")]
    [InlineData("10.244.0.0/22", 24, "10.244.1.0", "10.244.3.0")] // the boundary: <= 22 gives /24
    [InlineData("10.244.0.0/23", 25, "10.244.0.128", "10.244.1.128")] // then prefix + 2
    [InlineData("10.244.0.0/24", 26, "10.244.0.64", "10.244.0.192")]
    [InlineData("10.244.0.0/28", 30, "10.244.0.4", "10.244.0.12")] // the smallest network accepted
    [InlineData("128.0.0.0/1", 24, "128.0.1.0", "255.255.255.0")] // the end of the address space
    public void Default_subnet_length_min_and_max(string network, int len, string min, string max)
    {
        NetworkConfig config = Validate($$"""{"Network":"{{network}}"}""");
        Assert.Equal(len, config.SubnetLen);
        Assert.Equal(IPAddress.Parse(min), config.SubnetMin);
        Assert.Equal(IPAddress.Parse(max), config.SubnetMax);
    }

    [Fact]
    public void Explicit_values_are_kept()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16","SubnetLen":26,"SubnetMin":"10.244.10.64","SubnetMax":"10.244.20.192"}""");
        Assert.Equal(26, config.SubnetLen);
        Assert.Equal(IPAddress.Parse("10.244.10.64"), config.SubnetMin);
        Assert.Equal(IPAddress.Parse("10.244.20.192"), config.SubnetMax);
    }

    [Fact]
    public void Explicit_subnet_length_drives_the_default_min_and_max()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16","SubnetLen":20}""");
        Assert.Equal(IPAddress.Parse("10.244.16.0"), config.SubnetMin);
        Assert.Equal(IPAddress.Parse("10.244.240.0"), config.SubnetMax);
    }

    [Fact]
    public void Explicit_zero_min_and_max_mean_default_as_in_go()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16","SubnetMin":"0.0.0.0","SubnetMax":"0.0.0.0"}""");
        Assert.Equal(IPAddress.Parse("10.244.1.0"), config.SubnetMin);
        Assert.Equal(IPAddress.Parse("10.244.255.0"), config.SubnetMax);
    }

    [Fact]
    public void Validate_leaves_the_ipv6_fields_alone_when_ipv6_is_disabled()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16","IPv6SubnetMin":"fd00::"}""");
        Assert.Equal(0, config.IPv6SubnetLen);
        Assert.Equal(IPAddress.Parse("fd00::"), config.IPv6SubnetMin);
        Assert.Null(config.IPv6SubnetMax);
    }

    // ---- IPv4 errors (flannel's texts, verbatim) ----

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"Network":"0.0.0.0/0"}""")] // Go's zero value is "not set"
    public void Missing_network(string json) =>
        AssertError(json, "please define a correct Network parameter in the flannel config", "Network");

    [Theory]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(64)]
    public void Subnet_length_too_long(int len) =>
        AssertError($$"""{"Network":"10.244.0.0/16","SubnetLen":{{len}}}""", "SubnetLen must be less than /31", "SubnetLen");

    [Fact]
    public void Subnet_length_30_is_accepted() =>
        Assert.Equal(30, Validate("""{"Network":"10.244.0.0/16","SubnetLen":30}""").SubnetLen);

    [Theory]
    [InlineData("10.244.0.0/16", 17)]
    [InlineData("10.244.0.0/16", 16)]
    [InlineData("10.244.0.0/16", 8)]
    public void Fewer_than_four_subnets(string network, int len) =>
        AssertError($$"""{"Network":"{{network}}","SubnetLen":{{len}}}""", "network must be able to accommodate at least four subnets", "SubnetLen");

    [Fact]
    public void Exactly_four_subnets_is_accepted() =>
        Assert.Equal(18, Validate("""{"Network":"10.244.0.0/16","SubnetLen":18}""").SubnetLen);

    [Theory]
    [InlineData("10.244.0.0/29")]
    [InlineData("10.244.0.0/32")]
    public void Network_too_small(string network) =>
        AssertError($$"""{"Network":"{{network}}"}""", "network is too small. Minimum useful network prefix is /28", "Network");

    [Fact]
    public void Subnet_min_outside_the_network() =>
        AssertError("""{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}""", "SubnetMin is not in the range of the Network", "SubnetMin");

    [Fact]
    public void Subnet_max_outside_the_network() =>
        AssertError("""{"Network":"10.244.0.0/16","SubnetMax":"10.0.0.0"}""", "SubnetMax is not in the range of the Network", "SubnetMax");

    [Fact]
    public void Subnet_min_off_boundary() =>
        AssertError("""{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.128"}""", "SubnetMin is not on a SubnetLen boundary: 10.244.1.128", "SubnetMin");

    [Fact]
    public void Subnet_max_off_boundary() =>
        AssertError("""{"Network":"10.244.0.0/16","SubnetMax":"10.244.200.1"}""", "SubnetMax is not on a SubnetLen boundary: 10.244.200.1", "SubnetMax");

    [Fact]
    public void Explicit_min_and_length_with_a_computed_max()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/20","SubnetLen":22,"SubnetMin":"10.244.4.0"}""");
        Assert.Equal(IPAddress.Parse("10.244.12.0"), config.SubnetMax);
    }

    // ---- IPv6 defaults ----

    [Theory]
    [InlineData("fd00:10:244::/56", 64, "fd00:10:244:1::", "fd00:10:244:ff::")]
    [InlineData("fd00::/48", 64, "fd00:0:0:1::", "fd00:0:0:ffff::")]
    [InlineData("fd00::/62", 64, "fd00:0:0:1::", "fd00:0:0:3::")] // the boundary: <= 62 gives /64
    [InlineData("fd00::/63", 65, "fd00::8000:0:0:0", "fd00:0:0:1:8000::")]
    [InlineData("fd00::/124", 126, "fd00::4", "fd00::c")] // the smallest network accepted
    public void Ipv6_default_subnet_length_min_and_max(string network, int len, string min, string max)
    {
        NetworkConfig config = Validate($$"""{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"{{network}}"}""");
        Assert.Equal(len, config.IPv6SubnetLen);
        Assert.Equal(IPAddress.Parse(min), config.IPv6SubnetMin);
        Assert.Equal(IPAddress.Parse(max), config.IPv6SubnetMax);
        Assert.Equal(0, config.SubnetLen);
        Assert.Null(config.SubnetMin);
    }

    [Fact]
    public void Dual_stack_defaults_both_families()
    {
        NetworkConfig config = Validate("""{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}""");
        Assert.Equal(24, config.SubnetLen);
        Assert.Equal(IPAddress.Parse("10.244.1.0"), config.SubnetMin);
        Assert.Equal(64, config.IPv6SubnetLen);
        Assert.Equal(IPAddress.Parse("fd00:10:244:ff::"), config.IPv6SubnetMax);
    }

    [Fact]
    public void Ipv6_explicit_values_are_kept()
    {
        NetworkConfig config = Validate("""
            {"EnableIPv6":true,"Network":"10.244.0.0/16","IPv6Network":"fd00::/48","IPv6SubnetLen":56,
             "IPv6SubnetMin":"fd00:0:0:100::","IPv6SubnetMax":"fd00:0:0:200::"}
            """);
        Assert.Equal(56, config.IPv6SubnetLen);
        Assert.Equal(IPAddress.Parse("fd00:0:0:100::"), config.IPv6SubnetMin);
        Assert.Equal(IPAddress.Parse("fd00:0:0:200::"), config.IPv6SubnetMax);
    }

    // ---- IPv6 errors ----

    private const string V6 = "\"EnableIPv4\":false,\"EnableIPv6\":true";

    [Theory]
    [InlineData("""{"EnableIPv4":false,"EnableIPv6":true}""")]
    [InlineData("""{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"::/0"}""")]
    public void Ipv6_missing_network(string json) =>
        AssertError(json, "please define a correct IPv6Network parameter in the flannel config", "IPv6Network");

    [Fact]
    public void Ipv6_subnet_length_too_long() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetLen":127}""", "SubnetLen must be less than /127", "IPv6SubnetLen");

    [Fact]
    public void Ipv6_fewer_than_four_subnets() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetLen":49}""", "network must be able to accommodate at least four subnets", "IPv6SubnetLen");

    [Fact]
    public void Ipv6_network_too_small() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/125"}""", "IPv6Network is too small. Minimum useful network prefix is /124", "IPv6Network");

    [Fact]
    public void Ipv6_min_outside_the_network() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd01::"}""", "IPv6SubnetMin is not in the range of the IPv6Network", "IPv6SubnetMin");

    [Fact]
    public void Ipv6_max_outside_the_network() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetMax":"fc00::"}""", "IPv6SubnetMax is not in the range of the IPv6Network", "IPv6SubnetMax");

    [Fact]
    public void Ipv6_min_off_boundary() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd00:0:0:1::1"}""", "IPv6SubnetMin is not on a SubnetLen boundary: fd00:0:0:1::1", "IPv6SubnetMin");

    [Fact]
    public void Ipv6_max_off_boundary() =>
        AssertError($$"""{{{V6}},"IPv6Network":"fd00::/48","IPv6SubnetMax":"fd00:0:0:2:8000::"}""", "IPv6SubnetMax is not on a SubnetLen boundary: fd00:0:0:2:8000::", "IPv6SubnetMax");

    // ---- both families ----

    [Fact]
    public void No_family_enabled() =>
        AssertError("""{"Network":"10.244.0.0/16","EnableIPv4":false}""", "none defined stack");

    [Fact]
    public void Ipv4_errors_win_over_ipv6_errors_as_in_flannel() =>
        AssertError("""{"EnableIPv6":true}""", "please define a correct Network parameter in the flannel config");

    [Fact]
    public void Validate_is_idempotent()
    {
        NetworkConfig once = Validate("""{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}""");
        Assert.Equal(once, once.Validate());
    }
}
