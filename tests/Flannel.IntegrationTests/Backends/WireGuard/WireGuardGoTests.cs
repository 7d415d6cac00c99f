using System.Diagnostics;
using System.Net;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Backends.WireGuard.Tests.Conformance;
using Flannel.Backends.WireGuard.Userspace;
using Flannel.Netlink.WireGuard;
using Flannel.Testing;
using Flannel.Testing.Namespaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flannel.IntegrationTests.Backends.WireGuard;

/// <summary>The userspace control path against a real wireguard-go (and keys against wireguard-tools).</summary>
public sealed class WireGuardGoTests
{
    private static readonly WireGuardKey PeerKey = WireGuardKeyPair.Generate().PublicKey;

    [Fact]
    public async Task Starts_a_daemon_in_the_nodes_namespace_once_and_then_finds_it_running()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("wireguard-go");
        Privileged.RequireExecutable("nsenter");
        CancellationToken cancel = TestContext.Current.CancellationToken;
        await using NetworkNamespace ns = await NetworkNamespace.CreateAsync("fwg");
        string device = "fwg" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        var client = new WireGuardUapiClient();
        var launcher = new WireGuardGoLauncher(new WireGuardGoLaunchOptions { NetworkNamespace = ns.Name }, client, NullLogger.Instance);
        try
        {
            Assert.True(await launcher.EnsureRunningAsync(device, cancel));
            Assert.Contains(device, await ns.RunCheckedAsync("ip", "-o", "link", "show", device), StringComparison.Ordinal); // the TUN device is in the node's namespace
            Assert.False(await launcher.EnsureRunningAsync(device, cancel));
            Assert.NotNull(await client.GetDeviceAsync(device, cancel));
        }
        finally
        {
            // The daemon detached; it is the only process in this test's namespace.
            foreach (string pid in (await NetworkNamespace.RunProcessAsync(["ip", "netns", "pids", ns.Name], CancellationToken.None)).StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(int.Parse(pid.Trim(), System.Globalization.CultureInfo.InvariantCulture)).Kill();
                }
                catch (ArgumentException)
                {
                }
            }

            File.Delete(client.SocketPath(device));
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

    [Fact]
    public async Task Public_keys_match_wg_pubkey()
    {
        // wireguard-tools is a test dependency only: the product derives keys itself.
        Privileged.RequireExecutable("wg");
        for (int i = 0; i < 5; i++)
        {
            WireGuardKeyPair pair = WireGuardKeyPair.Generate();
            var start = new ProcessStartInfo("wg", "pubkey") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            using Process process = Process.Start(start)!;
            await process.StandardInput.WriteLineAsync(pair.PrivateKey.ToString());
            process.StandardInput.Close();
            string output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, process.ExitCode);
            Assert.Equal(pair.PublicKey.ToString(), output.Trim());
        }
    }
}

/// <summary>The WireGuard rules (shared with FakeWireGuard's unit tests) against a real wireguard-go over its UAPI socket.</summary>
public sealed class WireGuardGoConformanceTests : WireGuardControlConformance, IAsyncLifetime
{
    private readonly List<WireGuardGoProcess> _daemons = [];
    private readonly WireGuardUapiClient _client = new();
    private NetworkNamespace? _ns;

    protected override IWireGuardControl Control => _client;

    public async ValueTask InitializeAsync()
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable("wireguard-go");
        _ns = await NetworkNamespace.CreateAsync("fwgc");
    }

    protected override async Task<string> CreateDeviceAsync()
    {
        string device = "fwc" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        _daemons.Add(await WireGuardGoProcess.StartAsync(_ns!, device, TestContext.Current.CancellationToken));
        return device;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (WireGuardGoProcess daemon in _daemons)
        {
            await daemon.DisposeAsync();
        }

        if (_ns is not null)
        {
            await _ns.DisposeAsync();
        }
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
