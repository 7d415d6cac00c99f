using System.Diagnostics;
using System.Net;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Backends.WireGuard.Userspace;
using Flannel.Netlink.WireGuard;
using Flannel.Testing;
using Flannel.Testing.Namespaces;

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

    [Fact]
    public async Task Configures_a_real_wireguard_go_device_and_reads_it_back()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("wireguard-go");
        CancellationToken cancel = TestContext.Current.CancellationToken;
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync("fwg");
        string device = "fwg" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        await using var daemon = await WireGuardGoProcess.StartAsync(ns, device, cancel);
        var client = new WireGuardUapiClient();

        WireGuardKeyPair own = WireGuardKeyPair.Generate();
        WireGuardKey psk = WireGuardKey.CreateRandom();
        await client.SetDeviceAsync(
            new WireGuardDeviceUpdate
            {
                Name = device,
                PrivateKey = own.PrivateKey,
                ListenPort = 51820,
                ReplacePeers = true,
                Peers =
                [
                    new WireGuardPeerUpdate
                    {
                        PublicKey = PeerKey,
                        PresharedKey = psk,
                        Endpoint = IPEndPoint.Parse("198.18.0.12:51820"),
                        PersistentKeepaliveInterval = 25,
                        ReplaceAllowedIps = true,
                        AllowedIps = [IPNetwork.Parse("10.244.2.0/24"), IPNetwork.Parse("fd00:10:244:2::/64")],
                    },
                ],
            },
            cancel);

        WireGuardDevice? read = await client.GetDeviceAsync(device, cancel);
        Assert.NotNull(read);
        Assert.Equal(own.PublicKey, read.PublicKey);
        Assert.Equal((ushort)51820, read.ListenPort);
        WireGuardPeer peer = Assert.Single(read.Peers);
        Assert.Equal(PeerKey, peer.PublicKey);
        Assert.Equal(psk, peer.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("198.18.0.12:51820"), peer.Endpoint);
        Assert.Equal((ushort)25, peer.PersistentKeepaliveInterval);
        Assert.Equal(["10.244.2.0/24", "fd00:10:244:2::/64"], peer.AllowedIps.Select(n => n.ToString()).Order(StringComparer.Ordinal));

        // `wg show` (wireguard-tools) reads the same device the same way.
        if (Privileged.FindExecutable("wg") is not null)
        {
            string shown = await ns.RunCheckedAsync("wg", "show", device, "allowed-ips");
            Assert.Contains(PeerKey.ToString(), shown, StringComparison.Ordinal);
        }

        // Removing the peer.
        await client.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device, Peers = [new WireGuardPeerUpdate { PublicKey = PeerKey, Remove = true }] }, cancel);
        Assert.Empty((await client.GetDeviceAsync(device, cancel))!.Peers);

        // A refused value comes back as errno: a second device cannot listen on the first one's port.
        string second = device[..^1] + (device[^1] == 'a' ? 'b' : 'a');
        await using var other = await WireGuardGoProcess.StartAsync(ns, second, cancel);
        WireGuardUapiException refused = await Assert.ThrowsAsync<WireGuardUapiException>(async () =>
            await client.SetDeviceAsync(new WireGuardDeviceUpdate { Name = second, ListenPort = 51820 }, cancel));
        Assert.NotEqual(0, refused.Errno);
        Assert.Contains($"refused the configuration of {second}", refused.Message, StringComparison.Ordinal);
    }
}

/// <summary>A wireguard-go in the foreground inside a test namespace, stopped (and its socket removed) on dispose.</summary>
internal sealed class WireGuardGoProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _socket;

    private WireGuardGoProcess(Process process, string socket)
    {
        _process = process;
        _socket = socket;
    }

    public static async Task<WireGuardGoProcess> StartAsync(NetworkNamespace ns, string device, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { $"--net={ns.Path}", "--", "wireguard-go", "-f", device })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["LOG_LEVEL"] = "error";
        Process process = Process.Start(start) ?? throw new InvalidOperationException("cannot start wireguard-go");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string socket = Path.Combine(WireGuardUapiClient.DefaultSocketDirectory, device + ".sock");
        var client = new WireGuardUapiClient();
        for (int i = 0; i < 100 && !await client.IsListeningAsync(device, cancellationToken); i++)
        {
            Assert.False(process.HasExited, $"wireguard-go exited with {(process.HasExited ? process.ExitCode : 0)}");
            await Task.Delay(50, cancellationToken);
        }

        Assert.True(await client.IsListeningAsync(device, cancellationToken), $"wireguard-go did not open {socket}");
        return new WireGuardGoProcess(process, socket);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None);
        }

        _process.Dispose();
        File.Delete(_socket);
    }
}
