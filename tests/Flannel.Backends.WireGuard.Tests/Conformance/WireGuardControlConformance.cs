using System.Net;
using Flannel.Backends.WireGuard.Keys;
using Flannel.Netlink.WireGuard;

namespace Flannel.Backends.WireGuard.Tests.Conformance;

/// <summary>
/// WireGuard's configuration rules, as the backend relies on them, run against every <see cref="IWireGuardControl"/>
/// the backend is tested with: FakeWireGuard here (unit tests), a real wireguard-go over its UAPI socket in
/// tests/Flannel.IntegrationTests (this file is linked there). A rule the fake gets wrong fails against the real thing.
/// </summary>
public abstract class WireGuardControlConformance
{
    private static readonly WireGuardKey A = WireGuardKeyPair.Generate().PublicKey;
    private static readonly WireGuardKey B = WireGuardKeyPair.Generate().PublicKey;

    /// <summary>The control under test.</summary>
    protected abstract IWireGuardControl Control { get; }

    /// <summary>Creates an empty device and returns its name.</summary>
    protected abstract Task<string> CreateDeviceAsync();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static IPNetwork Net(string text) => IPNetwork.Parse(text);

    private Task SetAsync(string device, params WireGuardPeerUpdate[] peers) =>
        Control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device, Peers = peers }, Cancel).AsTask();

    private async Task<WireGuardDevice> GetAsync(string device) => (await Control.GetDeviceAsync(device, Cancel))!;

    private static string[] Sorted(IEnumerable<IPNetwork> networks) => networks.Select(n => n.ToString()).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task A_set_changes_only_what_it_names()
    {
        string device = await CreateDeviceAsync();
        WireGuardKeyPair keys = WireGuardKeyPair.Generate();
        await Control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device, PrivateKey = keys.PrivateKey, ListenPort = 51830 }, Cancel);
        await Control.SetDeviceAsync(new WireGuardDeviceUpdate { Name = device, ListenPort = 51831 }, Cancel);

        WireGuardDevice read = await GetAsync(device);
        Assert.Equal(keys.PrivateKey, read.PrivateKey);
        Assert.Equal(51831, read.ListenPort);
        Assert.Empty(read.Peers);
    }

    [Fact]
    public async Task A_peer_is_reported_with_everything_it_was_given()
    {
        string device = await CreateDeviceAsync();
        WireGuardKey psk = WireGuardKey.CreateRandom();
        await SetAsync(device, new WireGuardPeerUpdate
        {
            PublicKey = A,
            PresharedKey = psk,
            Endpoint = IPEndPoint.Parse("198.18.0.12:51820"),
            PersistentKeepaliveInterval = 25,
            ReplaceAllowedIps = true,
            AllowedIps = [Net("10.244.2.0/24"), Net("fd00:10:244:2::/64")],
        });

        WireGuardPeer peer = Assert.Single((await GetAsync(device)).Peers);
        Assert.Equal(A, peer.PublicKey);
        Assert.Equal(psk, peer.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("198.18.0.12:51820"), peer.Endpoint);
        Assert.Equal(25, peer.PersistentKeepaliveInterval);
        Assert.Equal(["10.244.2.0/24", "fd00:10:244:2::/64"], Sorted(peer.AllowedIps));
    }

    [Fact]
    public async Task Allowed_IPs_are_added_to_unless_replaced()
    {
        string device = await CreateDeviceAsync();
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, AllowedIps = [Net("10.244.2.0/24")] });
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, AllowedIps = [Net("10.244.3.0/24")] });
        Assert.Equal(["10.244.2.0/24", "10.244.3.0/24"], Sorted(Assert.Single((await GetAsync(device)).Peers).AllowedIps));

        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, ReplaceAllowedIps = true, AllowedIps = [Net("10.244.4.0/24")] });
        Assert.Equal(["10.244.4.0/24"], Sorted(Assert.Single((await GetAsync(device)).Peers).AllowedIps));
    }

    [Fact]
    public async Task An_allowed_IP_belongs_to_one_peer_so_giving_it_to_another_takes_it_away()
    {
        string device = await CreateDeviceAsync();
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, AllowedIps = [Net("10.244.2.0/24"), Net("10.244.5.0/24")] });
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = B, AllowedIps = [Net("10.244.2.0/24")] });

        WireGuardDevice read = await GetAsync(device);
        Assert.Equal(["10.244.5.0/24"], Sorted(read.Peers.Single(p => p.PublicKey.Equals(A)).AllowedIps));
        Assert.Equal(["10.244.2.0/24"], Sorted(read.Peers.Single(p => p.PublicKey.Equals(B)).AllowedIps));
    }

    [Fact]
    public async Task Remove_deletes_a_peer_and_update_only_never_creates_one()
    {
        string device = await CreateDeviceAsync();
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, AllowedIps = [Net("10.244.2.0/24")] }, new WireGuardPeerUpdate { PublicKey = B });
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, Remove = true });
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = WireGuardKeyPair.Generate().PublicKey, UpdateOnly = true, AllowedIps = [Net("10.244.9.0/24")] });

        Assert.Equal(B, Assert.Single((await GetAsync(device)).Peers).PublicKey);
    }

    [Fact]
    public async Task Replace_peers_drops_the_peers_not_listed_and_a_zero_PSK_clears_it()
    {
        string device = await CreateDeviceAsync();
        await SetAsync(device, new WireGuardPeerUpdate { PublicKey = A, PresharedKey = WireGuardKey.CreateRandom() }, new WireGuardPeerUpdate { PublicKey = B });
        await Control.SetDeviceAsync(
            new WireGuardDeviceUpdate { Name = device, ReplacePeers = true, Peers = [new WireGuardPeerUpdate { PublicKey = A, PresharedKey = new WireGuardKey(new byte[WireGuardKey.Length]) }] },
            Cancel);

        WireGuardPeer peer = Assert.Single((await GetAsync(device)).Peers);
        Assert.Equal(A, peer.PublicKey);
        Assert.Null(peer.PresharedKey);
    }
}
