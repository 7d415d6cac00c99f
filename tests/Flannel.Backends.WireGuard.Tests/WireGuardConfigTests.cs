using Flannel.Backends.WireGuard.Keys;
using Flannel.Configuration;
using Flannel.Netlink.WireGuard;
using Flannel.Subnets;

namespace Flannel.Backends.WireGuard.Tests;

public sealed class WireGuardConfigTests
{
    [Fact]
    public void Flannels_defaults_apply_when_only_the_type_is_given()
    {
        WireGuardConfig config = WireGuardConfig.Parse("""{"Type":"wireguard"}""");
        Assert.Equal(new WireGuardConfig(51820, 51821, 0, null, 0, WireGuardMode.Separate), config);
        Assert.Equal(WireGuardConfig.Default, WireGuardConfig.Parse(null));
    }

    [Fact]
    public void Every_key_is_read_case_insensitively()
    {
        WireGuardKey psk = WireGuardKey.CreateRandom();
        WireGuardConfig config = WireGuardConfig.Parse($$"""{"Type":"wireguard","listenport":51000,"ListenPortV6":51001,"mtu":1400,"PSK":"{{psk}}","PersistentKeepaliveInterval":25,"Mode":"auto","Unknown":[1]}""");
        Assert.Equal(new WireGuardConfig(51000, 51001, 1400, psk, 25, WireGuardMode.Auto), config);
        Assert.Equal(WireGuardMode.IPv4, WireGuardConfig.Parse("""{"Mode":"ipv4"}""").Mode);
        Assert.Equal(WireGuardMode.IPv6, WireGuardConfig.Parse("""{"Mode":"ipv6"}""").Mode);
        Assert.Null(WireGuardConfig.Parse("""{"PSK":""}""").PresharedKey);
    }

    [Theory]
    [InlineData("""{"Mode":"bogus"}""", "No valid Mode configured: \"bogus\" is not one of separate, auto, ipv4, ipv6", "Backend.Mode")]
    [InlineData("""{"Mode":"Separate"}""", "No valid Mode configured: \"Separate\" is not one of separate, auto, ipv4, ipv6", "Backend.Mode")]
    [InlineData("""{"ListenPort":"51820"}""", "error decoding backend config: ListenPort \"51820\" must be an integer", "Backend.ListenPort")]
    [InlineData("""{"ListenPort":70000}""", "error decoding backend config: ListenPort 70000 must be between 0 and 65535", "Backend.ListenPort")]
    [InlineData("""{"PersistentKeepaliveInterval":"25s"}""", "error decoding backend config: PersistentKeepaliveInterval \"25s\" must be an integer", "Backend.PersistentKeepaliveInterval")]
    [InlineData("""{"PersistentKeepaliveInterval":2.5}""", "error decoding backend config: PersistentKeepaliveInterval 2.5 must be an integer", "Backend.PersistentKeepaliveInterval")]
    [InlineData("""{"MTU":-1}""", "error decoding backend config: MTU -1 must be between 0 and 65535 (0 = the interface's MTU)", "Backend.MTU")]
    public void Bad_values_fail_naming_the_field(string backend, string message, string field)
    {
        var error = Assert.Throws<NetworkConfigException>(() => WireGuardConfig.Parse(backend));
        Assert.Equal(message, error.Message);
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void A_malformed_psk_fails_without_echoing_the_secret()
    {
        var error = Assert.Throws<NetworkConfigException>(() => WireGuardConfig.Parse("""{"PSK":"my-secret-passphrase"}"""));
        Assert.StartsWith("could not parse psk:", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("my-secret-passphrase", error.Message, StringComparison.Ordinal);
        Assert.Equal("(secret)", error.Value);
    }

    [Fact]
    public void Lease_data_is_byte_identical_to_flannels_and_reads_back()
    {
        WireGuardKey key = WireGuardKey.Parse("RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE=");
        var data = new WireGuardLeaseData(key, 51820);
        Assert.Equal("""{"PublicKey":"RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE=","Port":51820}""", data.ToJson());

        // The whole lease value flannel writes for a dual-stack wireguard node (separate mode: the v6 port is ListenPortV6).
        var attributes = new LeaseAttributes
        {
            PublicIP = System.Net.IPAddress.Parse("198.18.0.11"),
            PublicIPv6 = System.Net.IPAddress.Parse("fd00:198:18::11"),
            BackendType = "wireguard",
            BackendData = data.ToJson(),
            BackendV6Data = new WireGuardLeaseData(key, 51821).ToJson(),
        };
        Assert.Equal(
            """{"PublicIP":"198.18.0.11","PublicIPv6":"fd00:198:18::11","BackendType":"wireguard","BackendData":{"PublicKey":"RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE=","Port":51820},"BackendV6Data":{"PublicKey":"RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE=","Port":51821}}""",
            LeaseJson.Serialize(attributes));

        Assert.True(WireGuardLeaseData.TryParse(data.ToJson(), out WireGuardLeaseData? read, out _));
        Assert.Equal(data, read);
        Assert.True(WireGuardLeaseData.TryParse("""{"publickey":"RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE="}""", out read, out _));
        Assert.Equal((ushort)0, read!.Port); // flannel before the Port field: "use our own listen port"
    }

    [Theory]
    [InlineData(null, "no backend data")]
    [InlineData("""{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:02"}""", "PublicKey is missing")]
    [InlineData("""{"PublicKey":"short"}""", "is not a WireGuard key")]
    [InlineData("""{"PublicKey":7}""", "is not a string")]
    [InlineData("""{"PublicKey":"RCuBOR8fxzmL/lMxCx0bpUa/ggFsDBPXCIhdxdhlMRE=","Port":-1}""", "is not a port number")]
    [InlineData("""["x"]""", "is not a JSON object")]
    [InlineData("{", "is not JSON")]
    public void Foreign_or_hostile_lease_data_is_refused_with_a_reason(string? json, string reason)
    {
        Assert.False(WireGuardLeaseData.TryParse(json, out _, out string? error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }
}
