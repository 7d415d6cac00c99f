using System.Net;
using System.Threading.Channels;
using Flannel.Backends.WireGuard.Devices;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Configuration;
using Flannel.Netlink;
using Flannel.Netlink.WireGuard;
using Flannel.Subnets;
using Flannel.Testing;
using Flannel.Testing.FakeNetlink;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Flannel.Backends.WireGuard.Tests;

/// <summary>
/// The wireguard backend against FakeNetlink and FakeWireGuard, for both control paths: the kernel path (the kernel
/// accepts the wireguard link and the generic netlink family exists) and the userspace path (the kernel refuses the
/// link type, as this machine's does, and wireguard-go serves the device).
/// </summary>
public sealed class WireGuardBackendTests : IDisposable
{
    private static readonly WireGuardKey Psk = WireGuardKey.Parse("FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=");
    private readonly string _directory = Directory.CreateTempSubdirectory("wg-backend-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static NetworkConfig Config(string backend = """{"Type":"wireguard"}""", bool ipv4 = true, bool ipv6 = false) => new()
    {
        Network = ipv4 ? IPNetwork.Parse("10.244.0.0/16") : null,
        EnableIPv4 = ipv4,
        EnableIPv6 = ipv6,
        IPv6Network = ipv6 ? IPNetwork.Parse("fd00:10:244::/56") : null,
        SubnetLen = 24,
        IPv6SubnetLen = 64,
        BackendType = "wireguard",
        Backend = backend,
    };

    private static IPNetwork SubnetOf(int peer) => IPNetwork.Parse($"10.244.{peer}.0/24");

    private static IPNetwork Subnet6Of(int peer) => IPNetwork.Parse($"fd00:10:244:{peer}::/64");

    private static Lease Peer(int peer, WireGuardKey key, ushort port = 51820, bool ipv4 = true, bool ipv6 = false, ushort portV6 = 51821, string? backendData = null) => new()
    {
        Subnet = ipv4 ? SubnetOf(peer) : null,
        IPv6Subnet = ipv6 ? Subnet6Of(peer) : null,
        Attributes = new LeaseAttributes
        {
            PublicIP = ipv4 ? IPAddress.Parse($"198.18.0.{peer}") : IPAddress.Any,
            PublicIPv6 = ipv6 ? IPAddress.Parse($"fd00:198:18::{peer}") : null,
            BackendType = "wireguard",
            BackendData = ipv4 ? backendData ?? new WireGuardLeaseData(key, port).ToJson() : null,
            BackendV6Data = ipv6 ? new WireGuardLeaseData(key, portV6).ToJson() : null,
        },
    };

    private static LeaseEvent Added(Lease lease) => new(LeaseEventType.Added, lease);

    private static LeaseEvent Removed(Lease lease) => new(LeaseEventType.Removed, lease);

    private static WireGuardKey PublicKeyOf(int peer) => WireGuardKeyPair.FromPrivateKey(new WireGuardKey(Enumerable.Repeat((byte)(peer * 8), 32).ToArray())).PublicKey;

    /// <summary>The machine as the backend sees it: netlink, the userspace control (wireguard-go) and, optionally, the kernel's.</summary>
    private sealed class FakePlatform(FakeNetlink netlink, FakeWireGuard userspace, FakeWireGuard? kernel) : IWireGuardPlatform
    {
        public int Started { get; private set; }

        public IWireGuardControl Userspace => userspace;

        public ValueTask<IWireGuardControl?> OpenKernelAsync(CancellationToken cancellationToken) => ValueTask.FromResult<IWireGuardControl?>(kernel);

        /// <summary>wireguard-go creates its TUN device (a link of the device's name) and serves it.</summary>
        public async ValueTask<bool> EnsureUserspaceDeviceAsync(string device, CancellationToken cancellationToken)
        {
            if (netlink.FindLink(device) is not null)
            {
                return false;
            }

            await netlink.CreateLinkAsync(new LinkSpec { Name = device, Kind = LinkKind.Dummy }, cancellationToken);
            Started++;
            return true;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class Node : IAsyncDisposable
    {
        private readonly Channel<IReadOnlyList<LeaseEvent>> _events = Channel.CreateUnbounded<IReadOnlyList<LeaseEvent>>();
        private readonly CancellationTokenSource _stop = new();
        private Task _run = Task.CompletedTask;
        private IDisposable? _noKernel;

        public FakeNetlink Netlink { get; } = new();

        public FakeTimeProvider Time { get; } = new();

        public FakeWireGuard Userspace { get; private set; } = null!;

        public FakeWireGuard? Kernel { get; private set; }

        public FakePlatform Platform { get; private set; } = null!;

        public LinkInfo Eth0 { get; private set; } = null!;

        public INetwork Network { get; private set; } = null!;

        public WireGuardNetwork WireGuard => (WireGuardNetwork)Network;

        public string KeyFile { get; private set; } = null!;

        public FakeWireGuard Control => Kernel ?? Userspace;

        public static async Task<Node> StartAsync(string directory, NetworkConfig config, bool kernel = false, Lease? own = null, bool run = true)
        {
            var node = new Node { KeyFile = Path.Combine(directory, "wgkey") };
            node.Eth0 = node.Netlink.AddUnderlay("eth0", "198.18.0.1/24", mtu: 9000);
            node.Userspace = new FakeWireGuard(node.Netlink, "fake wireguard-go");
            if (kernel)
            {
                node.Kernel = new FakeWireGuard(node.Netlink, "fake kernel");
            }
            else
            {
                // This machine: `ip link add flannel-wg type wireguard` is refused (no module).
                node._noKernel = node.Netlink.InjectFault(op => op is { Name: "CreateLink", Spec: LinkSpec { Kind: LinkKind.WireGuard } }, errno: 95);
            }

            node.Platform = new FakePlatform(node.Netlink, node.Userspace, node.Kernel);
            var options = new WireGuardBackendOptions { KeyFile = node.KeyFile };
            var backend = new WireGuardBackend(node.Netlink, Options.Create(options), node.Time, NullLogger.Instance, null, (_, _) => node.Platform);
            var external = new ExternalInterface
            {
                Name = "eth0",
                Index = node.Eth0.Index,
                Mtu = node.Eth0.Mtu,
                IfaceAddress = IPAddress.Parse("198.18.0.1"),
                PublicIP = IPAddress.Parse("198.18.0.1"),
                IfaceIPv6Address = config.EnableIPv6 ? IPAddress.Parse("fd00:198:18::1") : null,
                PublicIPv6 = config.EnableIPv6 ? IPAddress.Parse("fd00:198:18::1") : null,
            };
            node.Network = await backend.RegisterNetworkAsync(new BackendContext { Config = config, ExternalInterface = external }, CancellationToken.None);
            own ??= new Lease
            {
                Subnet = config.EnableIPv4 ? SubnetOf(1) : null,
                IPv6Subnet = config.EnableIPv6 ? Subnet6Of(1) : null,
                Attributes = node.Network.LeaseAttributes,
            };
            await node.Network.ConfigureLeaseAsync(own, CancellationToken.None);
            if (run)
            {
                node._run = node.Network.RunAsync(node._events.Reader.ReadAllAsync(), node._stop.Token);
            }

            return node;
        }

        public ValueTask SendAsync(params LeaseEvent[] events) => _events.Writer.WriteAsync(events);

        public WireGuardPeer? PeerOf(string device, WireGuardKey key) => Control.Snapshot(device)?.Peers.FirstOrDefault(p => p.PublicKey.Equals(key));

        /// <summary>
        /// Polls <paramref name="condition"/>; with <paramref name="tick"/>, fake time moves one resync interval at a
        /// time, at most every 250 ms of real time. A pass that finds a fault also repairs it, and the next pass
        /// reports the repair: ticking on every poll could start that next pass before a poll saw the first one's
        /// finding, as happened on a loaded CI machine.
        /// </summary>
        public Task WaitUntilAsync(Func<bool> condition, string what, bool tick = false)
        {
            long lastTick = -250;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            return Wait.UntilAsync(condition, what, new WaitOptions
            {
                Timeout = TimeSpan.FromSeconds(15),
                BetweenPolls = tick
                    ? () =>
                    {
                        if (clock.ElapsedMilliseconds - lastTick >= 250)
                        {
                            lastTick = clock.ElapsedMilliseconds;
                            Time.Advance(TimeSpan.FromSeconds(10));
                        }
                    }
                    : null,
            });
        }

        public async ValueTask DisposeAsync()
        {
            _events.Writer.TryComplete();
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
            _noKernel?.Dispose();
        }
    }

    [Fact]
    public async Task Without_kernel_WireGuard_the_device_runs_on_wireguard_go_with_flannels_key_port_MTU_address_and_route()
    {
        await using Node node = await Node.StartAsync(_directory, Config(), run: false);

        WireGuardDeviceSet devices = node.WireGuard.Devices;
        Assert.False(devices.IsKernel);
        Assert.Contains("refused", devices.Reason, StringComparison.Ordinal);
        Assert.Equal(1, node.Platform.Started);
        WireGuardKeyPair keys = WireGuardKeyFile.LoadOrCreate(node.KeyFile, NullLogger.Instance);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(node.KeyFile));
        WireGuardDevice device = node.Userspace.Snapshot("flannel-wg")!;
        Assert.Equal(keys.PrivateKey, device.PrivateKey);
        Assert.Equal(51820, device.ListenPort);
        LinkInfo link = node.Netlink.FindLink("flannel-wg")!;
        Assert.Equal(9000 - 80, link.Mtu);
        Assert.Equal(9000 - 80, node.Network.Mtu);
        Assert.True(link.IsUp);
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == link.Index && a.Local.Equals(IPAddress.Parse("10.244.1.0")) && a.Address.PrefixLength == 32);
        Assert.Contains(node.Netlink.Routes, r => r.Destination == IPNetwork.Parse("10.244.0.0/16") && r.LinkIndex == link.Index && r.Scope == RouteScope.Link);
        Assert.Null(node.Netlink.FindLink("flannel-wg-v6"));
    }

    [Fact]
    public async Task With_kernel_WireGuard_the_kernel_link_and_generic_netlink_carry_the_device()
    {
        await using Node node = await Node.StartAsync(_directory, Config("""{"Type":"wireguard","ListenPort":51999,"MTU":1500}"""), kernel: true, run: false);

        Assert.True(node.WireGuard.Devices.IsKernel);
        Assert.Equal(0, node.Platform.Started);
        Assert.Equal("wireguard", node.Netlink.FindLink("flannel-wg")!.Kind);
        Assert.Equal(51999, node.Kernel!.Snapshot("flannel-wg")!.ListenPort);
        Assert.Empty(node.Userspace.Calls);
        Assert.Equal(1420, node.Network.Mtu); // the configured MTU less 80
    }

    [Fact]
    public async Task The_lease_attributes_are_byte_identical_to_flannels()
    {
        await using Node node = await Node.StartAsync(_directory, Config(ipv6: true), run: false);
        WireGuardKey publicKey = WireGuardKeyFile.LoadOrCreate(node.KeyFile, NullLogger.Instance).PublicKey;

        // flannel's wireguard backend, separate mode, dual stack: {"PublicKey","Port"} per family, Go's field order.
        Assert.Equal(
            $$$"""{"PublicIP":"198.18.0.1","PublicIPv6":"fd00:198:18::1","BackendType":"wireguard","BackendData":{"PublicKey":"{{{publicKey}}}","Port":51820},"BackendV6Data":{"PublicKey":"{{{publicKey}}}","Port":51821}}""",
            LeaseJson.Serialize(node.Network.LeaseAttributes));
    }

    [Fact]
    public async Task The_key_survives_a_restart_so_the_published_public_key_is_stable()
    {
        string first;
        await using (Node node = await Node.StartAsync(_directory, Config(), run: false))
        {
            first = node.Network.LeaseAttributes.BackendData!;
        }

        await using Node again = await Node.StartAsync(_directory, Config(), run: false);
        Assert.Equal(first, again.Network.LeaseAttributes.BackendData);
    }

    [Fact]
    public async Task Each_remote_lease_becomes_a_peer_with_key_PSK_keepalive_endpoint_and_allowed_IPs_and_goes_with_its_lease()
    {
        await using Node node = await Node.StartAsync(_directory, Config($$"""{"Type":"wireguard","PSK":"{{Psk}}","PersistentKeepaliveInterval":25}"""));
        Lease two = Peer(2, PublicKeyOf(2));
        Lease three = Peer(3, PublicKeyOf(3), port: 0); // a writer that publishes no Port: ours

        await node.SendAsync(Added(two), Added(three));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(3)) is not null && node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null, "both peers exist");

        WireGuardPeer peer = node.PeerOf("flannel-wg", PublicKeyOf(2))!;
        Assert.Equal(IPEndPoint.Parse("198.18.0.2:51820"), peer.Endpoint);
        Assert.Equal([SubnetOf(2)], peer.AllowedIps);
        Assert.Equal(Psk, peer.PresharedKey);
        Assert.Equal(25, peer.PersistentKeepaliveInterval);
        Assert.Equal(IPEndPoint.Parse("198.18.0.3:51820"), node.PeerOf("flannel-wg", PublicKeyOf(3))!.Endpoint);

        await node.SendAsync(Removed(two));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(2)) is null, "the removed lease's peer is gone");
        Assert.NotNull(node.PeerOf("flannel-wg", PublicKeyOf(3)));
    }

    [Fact]
    public async Task A_peers_key_rotation_replaces_its_peer()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        await node.SendAsync(Added(Peer(2, PublicKeyOf(2))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null, "the peer exists");

        await node.SendAsync(Added(Peer(2, PublicKeyOf(22))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(22)) is not null, "the new key's peer exists");

        WireGuardPeer rotated = Assert.Single(node.Control.Snapshot("flannel-wg")!.Peers);
        Assert.Equal(PublicKeyOf(22), rotated.PublicKey);
        Assert.Equal([SubnetOf(2)], rotated.AllowedIps);
    }

    [Fact]
    public async Task Drift_is_repaired_a_removed_peer_comes_back_a_stranger_goes_and_a_recreated_device_gets_every_peer_replayed()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        await node.SendAsync(Added(Peer(2, PublicKeyOf(2))), Added(Peer(3, PublicKeyOf(3))));
        await node.WaitUntilAsync(() => node.Control.Snapshot("flannel-wg")!.Peers.Count == 2, "two peers");

        node.Control.RemovePeerBehindBack("flannel-wg", PublicKeyOf(2));
        await node.Control.SetDeviceAsync(
            new WireGuardDeviceUpdate { Name = "flannel-wg", Peers = [new WireGuardPeerUpdate { PublicKey = PublicKeyOf(9), AllowedIps = [SubnetOf(9)] }] },
            CancellationToken.None);
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null && node.PeerOf("flannel-wg", PublicKeyOf(9)) is null, "the resync repaired the peers", tick: true);

        int before = node.Netlink.FindLink("flannel-wg")!.Index;
        node.Netlink.DeleteLinkBehindBack("flannel-wg"); // wireguard-go's TUN gone: the device and its peers with it
        await node.WaitUntilAsync(
            () => node.Netlink.FindLink("flannel-wg") is { } link && link.Index != before && node.Control.Snapshot("flannel-wg")?.Peers.Count == 2,
            "the device is recreated with its peers",
            tick: true);

        LinkInfo recreated = node.Netlink.FindLink("flannel-wg")!;
        Assert.Equal(2, node.Platform.Started);
        Assert.Equal(9000 - 80, recreated.Mtu);
        Assert.True(recreated.IsUp);
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == recreated.Index && a.Local.Equals(IPAddress.Parse("10.244.1.0")));
        Assert.Contains(node.Netlink.Routes, r => r.Destination == IPNetwork.Parse("10.244.0.0/16") && r.LinkIndex == recreated.Index);
        Assert.Equal(51820, node.Control.Snapshot("flannel-wg")!.ListenPort);
    }

    [Fact]
    public async Task Dual_stack_separate_mode_has_a_v6_device_whose_peers_are_reached_at_their_IPv6_address_and_ListenPortV6()
    {
        await using Node node = await Node.StartAsync(_directory, Config(ipv6: true));
        await node.SendAsync(Added(Peer(2, PublicKeyOf(2), ipv6: true, portV6: 51821)));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg-v6", PublicKeyOf(2)) is not null && node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null, "peers on both devices");

        WireGuardPeer v6 = node.PeerOf("flannel-wg-v6", PublicKeyOf(2))!;
        Assert.Equal(IPEndPoint.Parse("[fd00:198:18::2]:51821"), v6.Endpoint);
        Assert.Equal([Subnet6Of(2)], v6.AllowedIps);
        Assert.Equal([SubnetOf(2)], node.PeerOf("flannel-wg", PublicKeyOf(2))!.AllowedIps);
        Assert.Equal(51821, node.Control.Snapshot("flannel-wg-v6")!.ListenPort);
        LinkInfo link6 = node.Netlink.FindLink("flannel-wg-v6")!;
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == link6.Index && a.Local.Equals(IPAddress.Parse("fd00:10:244:1::")) && a.Address.PrefixLength == 128);
        Assert.Contains(node.Netlink.Routes, r => r.Destination == IPNetwork.Parse("fd00:10:244::/56") && r.LinkIndex == link6.Index);
    }

    [Fact]
    public async Task Auto_mode_puts_both_subnets_on_one_peer_of_one_device()
    {
        await using Node node = await Node.StartAsync(_directory, Config("""{"Type":"wireguard","Mode":"auto"}""", ipv6: true));
        // A node in auto mode publishes its one device's ListenPort in both families' data.
        await node.SendAsync(Added(Peer(2, PublicKeyOf(2), ipv6: true, portV6: 51820)));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null, "the peer exists");

        WireGuardPeer peer = node.PeerOf("flannel-wg", PublicKeyOf(2))!;
        Assert.Equal([SubnetOf(2), Subnet6Of(2)], peer.AllowedIps);
        Assert.Equal(IPEndPoint.Parse("198.18.0.2:51820"), peer.Endpoint); // 198.18/15 is not RFC 1918: IPv4 wins
        Assert.Null(node.Netlink.FindLink("flannel-wg-v6"));
    }

    [Fact]
    public async Task A_broken_or_duplicate_lease_gives_no_peer_and_never_stops_the_others()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        await node.SendAsync(
            Added(Peer(2, PublicKeyOf(2), backendData: """{"PublicKey":"not a key"}""")),
            Added(Peer(3, PublicKeyOf(3))),
            Added(Peer(4, PublicKeyOf(3))), // claims node 3's key: cryptokey routing would hand it node 3's traffic
            Added(Peer(5, PublicKeyOf(5))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(5)) is not null, "the good peers exist");

        WireGuardDevice device = node.Control.Snapshot("flannel-wg")!;
        Assert.Equal(2, device.Peers.Count);
        Assert.Equal([SubnetOf(3)], node.PeerOf("flannel-wg", PublicKeyOf(3))!.AllowedIps);
    }

    [Fact]
    public async Task A_peer_the_device_refuses_does_not_stop_the_others_and_is_retried()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        IDisposable refuse = node.Control.InjectFault(
            call => call.Update is { } update && update.Peers.Any(p => p.PublicKey.Equals(PublicKeyOf(2))),
            new NetlinkException("WG_CMD_SET_DEVICE", 22, "EINVAL", 0, null, null, "bad peer"));

        await node.SendAsync(Added(Peer(2, PublicKeyOf(2))), Added(Peer(3, PublicKeyOf(3))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(3)) is not null, "the good peer exists");
        Assert.Null(node.PeerOf("flannel-wg", PublicKeyOf(2)));

        var kernel = (IPeerKernelStateSource)node.Network;
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(Peer(2, PublicKeyOf(2)).Key).State == PeerKernelState.Missing, "the refused peer is reported missing");
        Assert.Contains("bad peer", kernel.GetPeerKernelStatus(Peer(2, PublicKeyOf(2)).Key).Detail, StringComparison.Ordinal);
        Assert.Equal(PeerKernelState.Programmed, kernel.GetPeerKernelStatus(Peer(3, PublicKeyOf(3)).Key).State);

        // Backoff: the refused peer is tried again only when its retry is due, not on every pass.
        int attempts = node.Control.Calls.Count(c => c.Update is { } u && u.Peers.Any(p => p.PublicKey.Equals(PublicKeyOf(2)) && !p.Remove));
        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.Equal(attempts, node.Control.Calls.Count(c => c.Update is { } u && u.Peers.Any(p => p.PublicKey.Equals(PublicKeyOf(2)) && !p.Remove)));

        refuse.Dispose();
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(2)) is not null, "the refused peer is retried", tick: true);
    }

    [Fact]
    public async Task Each_peer_reports_its_kernel_state_programmed_missing_or_drifted_from_the_engines_last_diff()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        var kernel = (IPeerKernelStateSource)node.Network;
        Lease two = Peer(2, PublicKeyOf(2));
        Lease three = Peer(3, PublicKeyOf(3));
        await node.SendAsync(Added(two), Added(three));
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(three.Key).State == PeerKernelState.Programmed && kernel.GetPeerKernelStatus(two.Key).State == PeerKernelState.Programmed, "both peers are programmed");

        node.Control.RemovePeerBehindBack("flannel-wg", PublicKeyOf(2));
        await node.Control.SetDeviceAsync(
            new WireGuardDeviceUpdate { Name = "flannel-wg", Peers = [new WireGuardPeerUpdate { PublicKey = PublicKeyOf(3), Endpoint = IPEndPoint.Parse("198.18.0.99:51820") }] },
            CancellationToken.None);
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(two.Key).State == PeerKernelState.Missing, "the removed peer is reported missing", tick: true);
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(three.Key).State == PeerKernelState.Drifted, "the re-pointed peer is reported drifted", tick: true);

        Assert.Contains($"wireguard peer {PublicKeyOf(2)} on flannel-wg", kernel.GetPeerKernelStatus(two.Key).Detail, StringComparison.Ordinal);
        Assert.Equal(IPEndPoint.Parse("198.18.0.3:51820"), node.PeerOf("flannel-wg", PublicKeyOf(3))!.Endpoint);
        Assert.NotNull(node.PeerOf("flannel-wg", PublicKeyOf(2)));
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(two.Key).State == PeerKernelState.Programmed, "the next pass finds it programmed again", tick: true);
    }

    [Fact]
    public async Task A_later_lease_claiming_a_programmed_peers_key_never_replaces_that_peer()
    {
        await using Node node = await Node.StartAsync(_directory, Config());
        var kernel = (IPeerKernelStateSource)node.Network;
        await node.SendAsync(Added(Peer(3, PublicKeyOf(3))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(3)) is not null, "the peer exists");

        Lease thief = Peer(2, PublicKeyOf(3)); // sorts before node 3 and claims its key
        await node.SendAsync(Added(thief));
        await node.WaitUntilAsync(() => kernel.GetPeerKernelStatus(thief.Key).State == PeerKernelState.Missing, "the claimant is refused");
        node.Time.Advance(TimeSpan.FromSeconds(30));
        await Task.Delay(100, TestContext.Current.CancellationToken);

        WireGuardPeer kept = Assert.Single(node.Control.Snapshot("flannel-wg")!.Peers);
        Assert.Equal([SubnetOf(3)], kept.AllowedIps);
        Assert.Equal(IPEndPoint.Parse("198.18.0.3:51820"), kept.Endpoint);
        Assert.Contains("already the key of lease 10.244.3.0-24", kernel.GetPeerKernelStatus(thief.Key).Detail, StringComparison.Ordinal);

        // Once node 3's lease goes, the key is free for whoever publishes it.
        await node.SendAsync(Removed(Peer(3, PublicKeyOf(3))));
        await node.WaitUntilAsync(() => node.PeerOf("flannel-wg", PublicKeyOf(3))?.AllowedIps.SequenceEqual([SubnetOf(2)]) == true, "the key moves to the remaining lease", tick: true);
    }

    [Fact]
    public async Task The_devices_are_the_overlay_and_a_peers_overlay_address_is_its_subnets_first_address_as_flannel_configures_it()
    {
        await using Node node = await Node.StartAsync(_directory, Config(ipv6: true), run: false);
        var overlay = Assert.IsAssignableFrom<IOverlayNetwork>(node.Network);

        Assert.Equal(["flannel-wg", "flannel-wg-v6"], overlay.DeviceNames);
        Assert.Contains("WireGuard UDP port (51820/51821) filtered", overlay.OverlayFailureCauses, StringComparison.Ordinal);
        Lease two = Peer(2, PublicKeyOf(2), ipv6: true);
        Assert.Equal(IPAddress.Parse("10.244.2.0"), overlay.OverlayAddressOf(two, System.Net.Sockets.AddressFamily.InterNetwork));
        Assert.Equal(IPAddress.Parse("fd00:10:244:2::"), overlay.OverlayAddressOf(two, System.Net.Sockets.AddressFamily.InterNetworkV6));

        // Our own device carries exactly that address of our lease, so probes go from it to the peer's.
        LinkInfo wg = node.Netlink.FindLink("flannel-wg")!;
        LinkInfo wg6 = node.Netlink.FindLink("flannel-wg-v6")!;
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == wg.Index && a.Local.Equals(IPAddress.Parse("10.244.1.0")));
        Assert.Contains(node.Netlink.Addresses, a => a.LinkIndex == wg6.Index && a.Local.Equals(IPAddress.Parse("fd00:10:244:1::")));
    }

    [Fact]
    public async Task An_unknown_mode_fails_registration_with_flannels_error()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        var platform = new FakePlatform(netlink, new FakeWireGuard(netlink), null);
        var backend = new WireGuardBackend(netlink, Options.Create(new WireGuardBackendOptions { KeyFile = Path.Combine(_directory, "k") }), new FakeTimeProvider(), NullLogger.Instance, null, (_, _) => platform);

        NetworkConfigException error = await Assert.ThrowsAsync<NetworkConfigException>(async () => await backend.RegisterNetworkAsync(
            new BackendContext { Config = Config("""{"Type":"wireguard","Mode":"both"}"""), ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = 1500 } },
            CancellationToken.None));
        Assert.Equal("Backend.Mode", error.Field);
        Assert.Null(netlink.FindLink("flannel-wg"));
    }

    [Fact]
    public async Task Kernel_only_fails_clearly_when_the_kernel_has_no_WireGuard()
    {
        var netlink = new FakeNetlink();
        LinkInfo eth0 = netlink.AddUnderlay("eth0", "198.18.0.1/24");
        using IDisposable noModule = netlink.InjectFault(op => op is { Name: "CreateLink", Spec: LinkSpec { Kind: LinkKind.WireGuard } }, errno: 95);
        var platform = new FakePlatform(netlink, new FakeWireGuard(netlink), null);
        var options = new WireGuardBackendOptions { KeyFile = Path.Combine(_directory, "k"), ControlPath = WireGuardControlPath.Kernel };
        var backend = new WireGuardBackend(netlink, Options.Create(options), new FakeTimeProvider(), NullLogger.Instance, null, (_, _) => platform);

        InvalidOperationException error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await backend.RegisterNetworkAsync(
            new BackendContext { Config = Config(), ExternalInterface = new ExternalInterface { Name = "eth0", Index = eth0.Index, Mtu = 1500 } },
            CancellationToken.None));
        Assert.Contains("ControlPath is Kernel", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, platform.Started);
    }
}
