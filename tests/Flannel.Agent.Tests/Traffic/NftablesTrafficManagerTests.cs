using System.Net;
using Flannel.Agent.Traffic;

namespace Flannel.Agent.Tests.Traffic;

public sealed class NftablesTrafficManagerTests
{
    private static readonly TrafficNetworks Node1 = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        Subnet = IPNetwork.Parse("10.244.1.0/24"),
    };

    private readonly FakeFirewall _fw = new();

    private ITrafficManager Create(TrafficManagerOptions? options = null) => TrafficManager.Create(useNftables: true, _fw, options);

    [Fact]
    public async Task Masquerade_chain_has_the_iptables_semantics_in_one_transaction()
    {
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken);

        Assert.Equal(
            "add table ip flannel-ipv4 { comment \"rules for flannel-ipv4\" ; }\n" +
            "add chain ip flannel-ipv4 postrtg { type nat hook postrouting priority srcnat ; policy accept ; comment \"chain to manage traffic masquerading by flannel\" ; }\n" +
            "flush chain ip flannel-ipv4 postrtg\n" +
            "add rule ip flannel-ipv4 postrtg meta mark & 0x00004000 == 0x00004000 return\n" +
            "add rule ip flannel-ipv4 postrtg ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return\n" +
            "add rule ip flannel-ipv4 postrtg ip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 return\n" +
            "add rule ip flannel-ipv4 postrtg ip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return\n" +
            "add rule ip flannel-ipv4 postrtg ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random\n" +
            "add rule ip flannel-ipv4 postrtg ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random\n",
            Assert.Single(_fw.NftScripts));
        Assert.Contains(_fw.Calls, c => c.File == "nft" && c.Args.SequenceEqual(["-c", "-f", "-"])); // fully-random probe, not committed
        Assert.DoesNotContain("ip6 flannel-ipv6", _fw.NftTables); // no IPv6 table without IPv6
    }

    [Fact]
    public async Task Without_fully_random_support_plain_masquerade_is_used()
    {
        _fw.NftFullyRandomSupported = false;
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken);
        Assert.DoesNotContain("fully-random", Assert.Single(_fw.NftScripts), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ipv6_gets_its_own_table_with_the_ipv6_multicast_range()
    {
        using ITrafficManager manager = Create(new TrafficManagerOptions { DisableFullyRandom = true });
        await manager.SetupAndEnsureMasqRulesAsync(new TrafficNetworks
        {
            IPv6Network = IPNetwork.Parse("fd00:10:244::/56"),
            IPv6Subnet = IPNetwork.Parse("fd00:10:244:1::/64"),
        }, null, TestContext.Current.CancellationToken);
        string script = Assert.Single(_fw.NftScripts);
        Assert.Contains("add rule ip6 flannel-ipv6 postrtg ip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade\n", script, StringComparison.Ordinal);
        Assert.DoesNotContain("ip flannel-ipv4", _fw.NftTables);
    }

    [Fact]
    public async Task Forward_chain_accepts_cluster_traffic()
    {
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureForwardRulesAsync(Node1, TestContext.Current.CancellationToken);
        Assert.Equal(
            "add table ip flannel-ipv4 { comment \"rules for flannel-ipv4\" ; }\n" +
            "add chain ip flannel-ipv4 forward { type filter hook forward priority filter ; policy accept ; comment \"chain to accept flannel traffic\" ; }\n" +
            "flush chain ip flannel-ipv4 forward\n" +
            "add rule ip flannel-ipv4 forward ip saddr 10.244.0.0/16 accept\n" +
            "add rule ip flannel-ipv4 forward ip daddr 10.244.0.0/16 accept\n",
            Assert.Single(_fw.NftScripts));
    }

    [Fact]
    public async Task Resync_rewrites_a_chain_that_changed_or_vanished_and_leaves_an_intact_one()
    {
        using ITrafficManager manager = Create();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, ct);
        await manager.SetupAndEnsureForwardRulesAsync(Node1, ct);
        Assert.Equal(0, await manager.ResyncAsync(ct));
        Assert.Equal(2, _fw.NftScripts.Count);

        string listing = _fw.NftChains["ip flannel-ipv4 postrtg"];
        _fw.NftChains["ip flannel-ipv4 postrtg"] = listing.Replace("\t\tip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return\n", "", StringComparison.Ordinal);
        Assert.Equal(1, await manager.ResyncAsync(ct));
        Assert.Equal(listing, _fw.NftChains["ip flannel-ipv4 postrtg"]);

        _fw.NftChains.Clear();
        _fw.NftTables.Clear();
        Assert.Equal(2, await manager.ResyncAsync(ct));
        Assert.Equal(listing, _fw.NftChains["ip flannel-ipv4 postrtg"]);
    }

    [Fact]
    public async Task Initialize_removes_the_iptables_chains_and_their_jumps()
    {
        _fw.SetChain("iptables", "nat", "FLANNEL-POSTRTG", "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN");
        _fw.SetChain("iptables", "nat", "POSTROUTING", "-A POSTROUTING -j KUBE-POSTROUTING", "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG");
        _fw.SetChain("iptables", "filter", "FLANNEL-FWD", "-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT");
        _fw.SetChain("iptables", "filter", "FORWARD", "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD");

        using ITrafficManager manager = Create();
        await manager.InitializeAsync(TestContext.Current.CancellationToken);

        Assert.False(_fw.HasChain("iptables", "nat", "FLANNEL-POSTRTG"));
        Assert.False(_fw.HasChain("iptables", "filter", "FLANNEL-FWD"));
        Assert.Equal(["-A POSTROUTING -j KUBE-POSTROUTING"], _fw.Chain("iptables", "nat", "POSTROUTING"));
        Assert.Empty(_fw.Chain("iptables", "filter", "FORWARD"));
        Assert.Empty(_fw.Restores("ip6tables-restore")); // nothing of ours in ip6tables
    }
}
