using System.Net;
using System.Text;
using Flannel.Subnets;

namespace Flannel.Core.Tests.Subnets;

public sealed class LeaseJsonTests
{
    // The lease values flannel writes (flannel-compat.md section 2.2), byte for byte.
    public const string Vxlan =
        """{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}""";

    public const string HostGw = """{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}""";

    public const string DualStack =
        """{"PublicIP":"198.18.0.2","PublicIPv6":"fd00:198:18::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}}""";

    public static TheoryData<string> FlannelExamples => [Vxlan, HostGw, DualStack];

    [Theory]
    [MemberData(nameof(FlannelExamples))]
    public void Round_trips_flannels_bytes_exactly(string json)
    {
        LeaseAttributes attributes = LeaseJson.Deserialize(Encoding.UTF8.GetBytes(json));
        Assert.Equal(json, LeaseJson.Serialize(attributes));
        Assert.Equal(Encoding.UTF8.GetBytes(json), LeaseJson.SerializeToUtf8Bytes(attributes));
    }

    [Fact]
    public void Writes_a_vxlan_lease_as_flannel_does()
    {
        var attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse("192.168.64.3"),
            BackendType = "vxlan",
            BackendData = """{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}""",
        };
        Assert.Equal(Vxlan, LeaseJson.Serialize(attributes));
    }

    [Fact]
    public void Reads_every_field()
    {
        LeaseAttributes attributes = LeaseJson.Deserialize(DualStack);
        Assert.Equal(IPAddress.Parse("198.18.0.2"), attributes.PublicIP);
        Assert.Equal(IPAddress.Parse("fd00:198:18::2"), attributes.PublicIPv6);
        Assert.Equal("vxlan", attributes.BackendType);
        Assert.Equal("""{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}""", attributes.BackendData);
        Assert.Equal("""{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}""", attributes.BackendV6Data);
    }

    [Fact]
    public void Built_in_backend_types_are_kept_as_one_shared_string_and_others_as_read()
    {
        LeaseAttributes first = LeaseJson.Deserialize(DualStack);
        LeaseAttributes second = LeaseJson.Deserialize(DualStack);
        LeaseAttributes foreign = LeaseJson.Deserialize("""{"PublicIP":"198.18.0.2","BackendType":"aws-vpc"}""");

        Assert.Same(first.BackendType, second.BackendType);
        Assert.Same(Flannel.Configuration.NetworkConfig.BuiltInBackendTypes[0], first.BackendType);
        Assert.Equal("aws-vpc", foreign.BackendType);
        Assert.Null(new LeaseAttributes { BackendType = null }.BackendType);
    }

    [Fact]
    public void Host_gw_has_no_backend_data()
    {
        LeaseAttributes attributes = LeaseJson.Deserialize(HostGw);
        Assert.Null(attributes.BackendData);
        Assert.Null(attributes.BackendV6Data);
        Assert.Null(attributes.PublicIPv6);
    }

    [Fact]
    public void Minimal_attributes_write_public_ip_and_a_null_ipv6()
    {
        Assert.Equal("""{"PublicIP":"0.0.0.0","PublicIPv6":null}""", LeaseJson.Serialize(new LeaseAttributes()));
    }

    [Fact]
    public void Empty_strings_are_omitted_as_go_omitempty_does()
    {
        var attributes = new LeaseAttributes { PublicIP = IPAddress.Parse("10.0.0.1"), BackendType = "", BackendData = "" };
        Assert.Equal("""{"PublicIP":"10.0.0.1","PublicIPv6":null}""", LeaseJson.Serialize(attributes));
    }

    [Fact]
    public void Backend_data_is_compacted_as_go_marshal_compacts_a_raw_message()
    {
        var attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse("10.0.0.1"),
            BackendType = "vxlan",
            BackendData = "{ \"VNI\" : 1,\n  \"Note\": \"a <b> & c \u2028 d \\\" e\" }",
        };
        Assert.Equal(
            """{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"Note":"a \u003cb\u003e \u0026 c \u2028 d \" e"}}""",
            LeaseJson.Serialize(attributes));
    }

    [Fact]
    public void Strings_are_escaped_as_go_escapes_them()
    {
        var attributes = new LeaseAttributes { PublicIP = IPAddress.Any, BackendType = "a\"b\\c<d>&e\nf\u0001g é \u2029" };
        Assert.Equal(
            "{\"PublicIP\":\"0.0.0.0\",\"PublicIPv6\":null,\"BackendType\":\"a\\\"b\\\\c\\u003cd\\u003e\\u0026e\\nf\\u0001g é \\u2029\"}",
            LeaseJson.Serialize(attributes));
        Assert.Equal(attributes.BackendType, LeaseJson.Deserialize(LeaseJson.SerializeToUtf8Bytes(attributes)).BackendType);
    }

    [Fact]
    public void Compaction_keeps_string_contents_byte_for_byte()
    {
        var attributes = new LeaseAttributes
        {
            BackendType = "x",
            BackendData = """{ "a" : "q\"  } , \\" , "b" : [ 1 , 2.50 , true , null ] }""",
        };
        Assert.Equal(
            """{"PublicIP":"0.0.0.0","PublicIPv6":null,"BackendType":"x","BackendData":{"a":"q\"  } , \\","b":[1,2.50,true,null]}}""",
            LeaseJson.Serialize(attributes));
    }

    [Fact]
    public void Addresses_of_the_wrong_family_cannot_be_written()
    {
        Assert.Throws<ArgumentException>(() => LeaseJson.Serialize(new LeaseAttributes { PublicIP = IPAddress.Parse("fd00::1") }));
        Assert.Throws<ArgumentException>(() => LeaseJson.Serialize(new LeaseAttributes { PublicIPv6 = IPAddress.Parse("10.0.0.1") }));
        Assert.Equal(
            """{"PublicIP":"10.0.0.1","PublicIPv6":null}""",
            LeaseJson.Serialize(new LeaseAttributes { PublicIP = IPAddress.Parse("10.0.0.1").MapToIPv6() }));
    }

    [Fact]
    public void Invalid_backend_data_cannot_be_written()
    {
        var attributes = new LeaseAttributes { BackendType = "vxlan", BackendData = "{\"VNI\":" };
        var ex = Assert.Throws<ArgumentException>(() => LeaseJson.Serialize(attributes));
        Assert.Contains("BackendData", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_any_compatible_writer_case_insensitive_with_extra_fields_and_whitespace()
    {
        const string Json = """
            {
              "publicip": "198.18.0.7",
              "PUBLICIPV6": null,
              "backendtype": "vxlan",
              "Extra": [1, 2, {"x": null}],
              "backenddata": { "VtepMAC" : "c6:d2:32:6f:8f:44",  "VNI": 1 }
            }
            """;
        LeaseAttributes attributes = LeaseJson.Deserialize(Json);
        Assert.Equal(IPAddress.Parse("198.18.0.7"), attributes.PublicIP);
        Assert.Equal("""{"VtepMAC":"c6:d2:32:6f:8f:44","VNI":1}""", attributes.BackendData);
        Assert.Equal(
            """{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VtepMAC":"c6:d2:32:6f:8f:44","VNI":1}}""",
            LeaseJson.Serialize(attributes));
    }

    [Fact]
    public void Missing_public_ip_reads_as_zero_as_in_go()
    {
        Assert.Equal(IPAddress.Any, LeaseJson.Deserialize("""{"BackendType":"host-gw"}""").PublicIP);
    }

    [Fact]
    public void Equal_values_from_different_writers_compare_equal()
    {
        LeaseAttributes a = LeaseJson.Deserialize(Vxlan);
        LeaseAttributes b = LeaseJson.Deserialize("""{"PublicIP":"192.168.64.3","BackendType":"vxlan","BackendData":{ "VNI":1, "VtepMAC":"c6:d2:32:6f:8f:44" }}""");
        Assert.Equal(a, b);
    }

    [Theory]
    [InlineData("""{"PublicIP":"fd00::1"}""", "lease field PublicIP: \"fd00::1\" is not an IPv4 address")]
    [InlineData("""{"PublicIP":"10.0.0"}""", "lease field PublicIP: \"10.0.0\" is not an IPv4 address")]
    [InlineData("""{"PublicIP":17}""", "lease field PublicIP: 17 is not an IPv4 address")]
    [InlineData("""{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}""", "lease field PublicIPv6: \"10.0.0.2\" is not an IPv6 address")]
    [InlineData("""{"PublicIP":"10.0.0.1","PublicIPv6":"fe80::1%eth0"}""", "lease field PublicIPv6: \"fe80::1%eth0\" is not an IPv6 address")]
    [InlineData("""{"PublicIP":"10.0.0.1","BackendType":true}""", "lease field BackendType: true is not a string")]
    public void Bad_values_name_the_field_and_the_value(string json, string message)
    {
        var ex = Assert.Throws<LeaseFormatException>(() => LeaseJson.Deserialize(json));
        Assert.Equal(message, ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("\"lease\"")]
    [InlineData("{\"PublicIP\":")]
    [InlineData("{\"PublicIP\":\"10.0.0.1\"} x")]
    [InlineData("{\"PublicIP\":\"10.0.0.1\"}{}")]
    public void Malformed_values_are_rejected_quoting_the_value(string json)
    {
        var ex = Assert.Throws<LeaseFormatException>(() => LeaseJson.Deserialize(json));
        Assert.Contains($"'{json}'", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}""", """{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}""")]
    [InlineData("""{ "VNI" : 1 }""", """{"VNI":1}""")]
    [InlineData("""{"Note":"x y"}""", """{"Note":"x y"}""")]
    [InlineData("""{"Note":"<a&b>"}""", """{"Note":"\u003ca\u0026b\u003e"}""")]
    [InlineData("\"a\u2028b\"", "\"a\\u2028b\"")]
    [InlineData("[1, \"é\"]", "[1,\"é\"]")]
    public void Backend_data_is_read_compacted_as_go_compacts_a_raw_message(string backendData, string expected)
    {
        LeaseAttributes attributes = LeaseJson.Deserialize($$"""{"PublicIP":"10.0.0.1","BackendData":{{backendData}}}""");
        Assert.Equal(expected, attributes.BackendData);
    }

    [Fact]
    public void Of_a_member_given_twice_in_any_case_the_last_is_read_as_in_go()
    {
        LeaseAttributes attributes = LeaseJson.Deserialize("""{"PublicIP":"10.0.0.1","publicip":"10.0.0.2","BackendData":{"a":1},"BACKENDDATA":{"b":2}}""");
        Assert.Equal(IPAddress.Parse("10.0.0.2"), attributes.PublicIP);
        Assert.Equal("""{"b":2}""", attributes.BackendData);
    }
}
