using System.Net;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Backends.WireGuard.Userspace;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard.Tests.Userspace;

public sealed class WireGuardUapiClientTests
{
    private static readonly WireGuardKey PeerKey = WireGuardKeyPair.Generate().PublicKey;

    [Fact]
    public void A_set_is_written_in_the_protocols_order_with_hex_keys()
    {
        WireGuardKeyPair own = WireGuardKeyPair.Generate();
        WireGuardKey psk = WireGuardKey.CreateRandom();
        string text = WireGuardUapiClient.FormatSet(new WireGuardDeviceUpdate
        {
            Name = "flannel-wg",
            PrivateKey = own.PrivateKey,
            ListenPort = 51820,
            ReplacePeers = true,
            Peers =
            [
                new WireGuardPeerUpdate
                {
                    PublicKey = PeerKey,
                    PresharedKey = psk,
                    Endpoint = IPEndPoint.Parse("[fd00::12]:51821"),
                    PersistentKeepaliveInterval = 25,
                    ReplaceAllowedIps = true,
                    AllowedIps = [IPNetwork.Parse("10.244.2.0/24"), IPNetwork.Parse("fd00:10:244:2::/64")],
                },
                new WireGuardPeerUpdate { PublicKey = psk, Remove = true, AllowedIps = [IPNetwork.Parse("10.0.0.0/8")] },
            ],
        });

        Assert.Equal(
            "set=1\n" +
            $"private_key={own.PrivateKey.ToHex()}\n" +
            "listen_port=51820\n" +
            "replace_peers=true\n" +
            $"public_key={PeerKey.ToHex()}\n" +
            $"preshared_key={psk.ToHex()}\n" +
            "endpoint=[fd00::12]:51821\n" +
            "persistent_keepalive_interval=25\n" +
            "replace_allowed_ips=true\n" +
            "allowed_ip=10.244.2.0/24\n" +
            "allowed_ip=fd00:10:244:2::/64\n" +
            $"public_key={psk.ToHex()}\n" +
            "remove=true\n" +
            "\n",
            text);
    }

    [Fact]
    public void A_get_reply_is_parsed_with_its_peers()
    {
        WireGuardKeyPair own = WireGuardKeyPair.Generate();
        string reply =
            $"private_key={own.PrivateKey.ToHex()}\nlisten_port=51820\n" +
            $"public_key={PeerKey.ToHex()}\npreshared_key={new string('0', 64)}\nprotocol_version=1\nendpoint=198.18.0.12:51820\n" +
            "last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=92\nrx_bytes=148\npersistent_keepalive_interval=0\n" +
            "allowed_ip=10.244.2.0/24\nallowed_ip=fd00:10:244:2::/64\nerrno=0\n\n";

        WireGuardDevice device = WireGuardUapiClient.ParseGet("flannel-wg", reply, "test");

        Assert.Equal(own.PrivateKey, device.PrivateKey);
        Assert.Equal(own.PublicKey, device.PublicKey);
        Assert.Equal((ushort)51820, device.ListenPort);
        WireGuardPeer peer = Assert.Single(device.Peers);
        Assert.Equal(PeerKey, peer.PublicKey);
        Assert.Null(peer.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("198.18.0.12:51820"), peer.Endpoint);
        Assert.Equal(148UL, peer.ReceivedBytes);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), peer.LastHandshake);
        Assert.Equal([IPNetwork.Parse("10.244.2.0/24"), IPNetwork.Parse("fd00:10:244:2::/64")], peer.AllowedIps);
    }

    [Theory]
    [InlineData("listen_port=51820\n\n", "has no errno line")]
    [InlineData("listen_port=99999\nerrno=0\n\n", "listen_port=99999")]
    [InlineData("public_key=zz\nerrno=0\n\n", "public_key=zz")]
    [InlineData("garbage\nerrno=0\n\n", "is not key=value")]
    [InlineData("errno=-22\n\n", "errno=-22")]
    public void Bad_get_replies_fail_with_the_line_that_is_wrong(string reply, string expected)
    {
        WireGuardUapiException error = Assert.Throws<WireGuardUapiException>(() => WireGuardUapiClient.ParseGet("flannel-wg", reply, "/var/run/wireguard/flannel-wg.sock"));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_socket_means_no_device()
    {
        string directory = Directory.CreateTempSubdirectory("uapi-").FullName;
        try
        {
            var client = new WireGuardUapiClient(directory);
            Assert.Null(await client.GetDeviceAsync("flannel-wg", TestContext.Current.CancellationToken));
            WireGuardUapiException error = await Assert.ThrowsAsync<WireGuardUapiException>(async () =>
                await client.SetDeviceAsync(new WireGuardDeviceUpdate { Name = "flannel-wg", ListenPort = 1 }, TestContext.Current.CancellationToken));
            Assert.Contains("is not running", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
