using System.Net;
using Flannel.Testing;
using Flannel.Agent.Traffic;

namespace Flannel.IntegrationTests.Traffic;

/// <summary>
/// The managers against the real iptables/nft inside a fresh network namespace per test (never the root
/// namespace), compared with flannel's e2e golden output.
/// </summary>
public sealed class TrafficKernelTests : IAsyncLifetime
{
    private static readonly TrafficNetworks Node = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        Subnet = IPNetwork.Parse("10.244.3.0/24"),
        IPv6Network = IPNetwork.Parse("fd00:10:244::/56"),
        IPv6Subnet = IPNetwork.Parse("fd00:10:244:3::/64"),
    };

    private readonly string _namespace = "fnt-" + Guid.NewGuid().ToString("N")[..8];
    private bool _created;
    private NetworkNamespaceCommandRunner _runner = null!;

    public async ValueTask InitializeAsync()
    {
        if (!Privileged.IsRoot || Privileged.FindExecutable("ip") is null)
        {
            return;
        }

        CommandResult add = await ProcessCommandRunner.Instance.RunAsync("ip", ["netns", "add", _namespace], null, CancellationToken.None);
        _created = add.Succeeded;
        _runner = new NetworkNamespaceCommandRunner(_namespace);
    }

    public async ValueTask DisposeAsync()
    {
        if (_created)
        {
            await ProcessCommandRunner.Instance.RunAsync("ip", ["netns", "del", _namespace], null, CancellationToken.None);
        }
    }

    private void RequireKernel(string tool)
    {
        Privileged.RequireRoot();
        Privileged.RequireExecutable(tool);
        Privileged.Require(_created, $"could not create network namespace {_namespace}");
    }

    private async Task<string> InNs(params string[] command)
    {
        CommandResult result = await _runner.RunAsync(command[0], command[1..], null, TestContext.Current.CancellationToken);
        Assert.True(result.Succeeded, $"{string.Join(' ', command)} failed: {result.StandardError}");
        return result.StandardOutput.TrimEnd('\n');
    }

    /// <summary>flannel's e2e iptablesNatFlannel: the FLANNEL lines of POSTROUTING, then <c>-S FLANNEL-POSTRTG</c>.</summary>
    private async Task<string> IptablesNatFlannel(string iptables = "iptables")
    {
        string post = await InNs(iptables, "-t", "nat", "-S", "POSTROUTING");
        string chain = await InNs(iptables, "-t", "nat", "-S", "FLANNEL-POSTRTG");
        return string.Join('\n', post.Split('\n').Where(l => l.Contains("FLANNEL", StringComparison.Ordinal)).Concat(chain.Split('\n')));
    }

    private static string ExpectedIptablesPostrouting(string podCidr, string cluster = "10.244.0.0/16", string multicast = "224.0.0.0/4") => string.Join('\n',
        "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG",
        "-N FLANNEL-POSTRTG",
        "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG -s {podCidr} -d {cluster} -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG -s {cluster} -d {podCidr} -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG ! -s {cluster} -d {podCidr} -m comment --comment \"flanneld masq\" -j RETURN",
        $"-A FLANNEL-POSTRTG -s {cluster} ! -d {multicast} -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
        $"-A FLANNEL-POSTRTG ! -s {cluster} -d {cluster} -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully");

    [Fact]
    public async Task Iptables_rules_match_flannels_golden_output_and_a_deleted_rule_is_restored()
    {
        RequireKernel("iptables");
        CancellationToken ct = TestContext.Current.CancellationToken;
        using ITrafficManager manager = TrafficManager.Create(false, _runner);
        await manager.InitializeAsync(ct);
        await manager.SetupAndEnsureMasqRulesAsync(Node, null, ct);
        await manager.SetupAndEnsureForwardRulesAsync(Node, ct);

        Assert.Equal(ExpectedIptablesPostrouting("10.244.3.0/24"), await IptablesNatFlannel());
        Assert.Equal(ExpectedIptablesPostrouting("fd00:10:244:3::/64", "fd00:10:244::/56", "ff00::/8"), await IptablesNatFlannel("ip6tables"));
        Assert.Equal(string.Join('\n',
                "-P FORWARD ACCEPT",
                "-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD",
                "-N FLANNEL-FWD",
                "-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
                "-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT"),
            await InNs("iptables", "-t", "filter", "-S", "FORWARD") + "\n" + await InNs("iptables", "-t", "filter", "-S", "FLANNEL-FWD"));

        Assert.Equal(0, await manager.ResyncAsync(ct)); // nothing to do: no churn

        await InNs("iptables", "-t", "nat", "-D", "FLANNEL-POSTRTG", "3");
        await InNs("iptables", "-t", "filter", "-D", "FORWARD", "1");
        Assert.Equal(2, await manager.ResyncAsync(ct));
        Assert.Equal(ExpectedIptablesPostrouting("10.244.3.0/24"), await IptablesNatFlannel());
        Assert.Contains("-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD", await InNs("iptables", "-t", "filter", "-S", "FORWARD"), StringComparison.Ordinal);
        Assert.Equal(0, await manager.ResyncAsync(ct));
    }

    [Fact]
    public async Task A_restarted_manager_keeps_the_rules_and_a_new_subnet_replaces_them()
    {
        RequireKernel("iptables");
        CancellationToken ct = TestContext.Current.CancellationToken;
        using (ITrafficManager first = TrafficManager.Create(false, _runner))
        {
            await first.SetupAndEnsureMasqRulesAsync(Node with { IPv6Network = null, IPv6Subnet = null }, null, ct);
        }

        string restoresBefore = await InNs("iptables", "-t", "nat", "-S");
        using ITrafficManager second = TrafficManager.Create(false, _runner);
        await second.SetupAndEnsureMasqRulesAsync(Node with { IPv6Network = null, IPv6Subnet = null }, Node, ct);
        Assert.Equal(restoresBefore, await InNs("iptables", "-t", "nat", "-S"));

        TrafficNetworks moved = Node with { Subnet = IPNetwork.Parse("10.244.42.0/24"), IPv6Network = null, IPv6Subnet = null };
        await second.SetupAndEnsureMasqRulesAsync(moved, Node, ct);
        Assert.Equal(ExpectedIptablesPostrouting("10.244.42.0/24"), await IptablesNatFlannel());
    }

    [Fact]
    public async Task Nftables_chains_have_the_iptables_semantics_and_are_resynced()
    {
        RequireKernel("nft");
        CancellationToken ct = TestContext.Current.CancellationToken;
        using ITrafficManager manager = TrafficManager.Create(true, _runner);
        await manager.InitializeAsync(ct);
        await manager.SetupAndEnsureMasqRulesAsync(Node with { IPv6Network = null, IPv6Subnet = null }, null, ct);
        await manager.SetupAndEnsureForwardRulesAsync(Node with { IPv6Network = null, IPv6Subnet = null }, ct);

        string expectedPostrouting = string.Join('\n',
            "table ip flannel-ipv4 {",
            "\tchain postrtg {",
            "\t\tcomment \"chain to manage traffic masquerading by flannel\"",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            "\t\tmeta mark & 0x00004000 == 0x00004000 return",
            "\t\tip saddr 10.244.3.0/24 ip daddr 10.244.0.0/16 return",
            "\t\tip saddr 10.244.0.0/16 ip daddr 10.244.3.0/24 return",
            "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.3.0/24 return",
            "\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
            "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random",
            "\t}",
            "}");
        Assert.Equal(expectedPostrouting, await InNs("nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"));
        Assert.Equal(string.Join('\n',
                "table ip flannel-ipv4 {",
                "\tchain forward {",
                "\t\tcomment \"chain to accept flannel traffic\"",
                "\t\ttype filter hook forward priority filter; policy accept;",
                "\t\tip saddr 10.244.0.0/16 accept",
                "\t\tip daddr 10.244.0.0/16 accept",
                "\t}",
                "}"),
            await InNs("nft", "list", "chain", "ip", "flannel-ipv4", "forward"));
        Assert.DoesNotContain("flannel-ipv6", await InNs("nft", "list", "tables"), StringComparison.Ordinal);
        Assert.Equal(0, await manager.ResyncAsync(ct));

        await InNs("nft", "flush", "chain", "ip", "flannel-ipv4", "postrtg");
        Assert.Equal(1, await manager.ResyncAsync(ct));
        Assert.Equal(expectedPostrouting, await InNs("nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"));

        await InNs("nft", "delete", "table", "ip", "flannel-ipv4");
        Assert.Equal(2, await manager.ResyncAsync(ct));
        Assert.Equal(expectedPostrouting, await InNs("nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"));
    }

    [Fact]
    public async Task Switching_mode_removes_the_other_modes_rules()
    {
        RequireKernel("nft");
        Privileged.RequireExecutable("iptables");
        CancellationToken ct = TestContext.Current.CancellationToken;

        using (ITrafficManager iptables = TrafficManager.Create(false, _runner))
        {
            await iptables.InitializeAsync(ct);
            await iptables.SetupAndEnsureMasqRulesAsync(Node, null, ct);
            await iptables.SetupAndEnsureForwardRulesAsync(Node, ct);
        }

        using (ITrafficManager nft = TrafficManager.Create(true, _runner))
        {
            await nft.InitializeAsync(ct);
            await nft.SetupAndEnsureMasqRulesAsync(Node, null, ct);
        }

        foreach (string tool in new[] { "iptables", "ip6tables" })
        {
            Assert.DoesNotContain("FLANNEL", await InNs(tool, "-t", "nat", "-S"), StringComparison.Ordinal);
            Assert.DoesNotContain("FLANNEL", await InNs(tool, "-t", "filter", "-S"), StringComparison.Ordinal);
        }

        string tables = await InNs("nft", "list", "tables");
        Assert.Contains("table ip flannel-ipv4", tables, StringComparison.Ordinal);
        Assert.Contains("table ip6 flannel-ipv6", tables, StringComparison.Ordinal);

        using (ITrafficManager back = TrafficManager.Create(false, _runner))
        {
            await back.InitializeAsync(ct);
            await back.SetupAndEnsureMasqRulesAsync(Node with { IPv6Network = null, IPv6Subnet = null }, null, ct);
        }

        Assert.DoesNotContain("flannel-ipv", await InNs("nft", "list", "tables"), StringComparison.Ordinal);
        Assert.Equal(ExpectedIptablesPostrouting("10.244.3.0/24"), await IptablesNatFlannel());
    }

    [Fact]
    public async Task Blackhole_routes_are_added_and_restored()
    {
        RequireKernel("ip");
        CancellationToken ct = TestContext.Current.CancellationToken;
        using ITrafficManager manager = TrafficManager.Create(false, _runner);
        await InNs("ip", "link", "set", "lo", "up");
        await manager.SetupAndEnsureBlackholeRoutesAsync(Node, ct);

        Assert.Equal("blackhole 10.244.3.0/24 proto 70 metric 4294967295", (await InNs("ip", "-4", "route", "show", "type", "blackhole")).Trim());
        Assert.StartsWith("blackhole fd00:10:244:3::/64 dev lo proto 70 metric 4294967295", await InNs("ip", "-6", "route", "show", "type", "blackhole"), StringComparison.Ordinal);
        Assert.Equal(0, await manager.ResyncAsync(ct));

        await InNs("ip", "-4", "route", "del", "blackhole", "10.244.3.0/24", "proto", "70", "metric", "4294967295");
        Assert.Equal(1, await manager.ResyncAsync(ct));
        Assert.Equal("blackhole 10.244.3.0/24 proto 70 metric 4294967295", (await InNs("ip", "-4", "route", "show", "type", "blackhole")).Trim());

        // A changed lease moves the blackhole: the old subnet may be another node's now.
        await manager.SetupAndEnsureBlackholeRoutesAsync(Node with { Subnet = IPNetwork.Parse("10.244.9.0/24"), IPv6Subnet = null }, ct);
        Assert.Equal("blackhole 10.244.9.0/24 proto 70 metric 4294967295", (await InNs("ip", "-4", "route", "show", "type", "blackhole")).Trim());
        Assert.Equal("", (await InNs("ip", "-6", "route", "show", "type", "blackhole")).Trim());
    }

    /// <summary>
    /// The node's pod bridge as the bridge plugin leaves it after the first pod: cni0 with the gateway address (which
    /// makes the kernel add <c>10.244.3.0/24 dev cni0 proto kernel</c>) and one attached veth so that it is up.
    /// </summary>
    private async Task AddPodBridgeAsync()
    {
        await InNs("ip", "link", "add", "cni0", "type", "bridge");
        await InNs("ip", "link", "add", "veth-pod", "type", "veth", "peer", "name", "eth-pod");
        await InNs("ip", "link", "set", "veth-pod", "master", "cni0", "up");
        await InNs("ip", "link", "set", "eth-pod", "up");
        await InNs("ip", "link", "set", "cni0", "up");
        await InNs("ip", "addr", "add", "10.244.3.1/24", "dev", "cni0");
        await InNs("ip", "-6", "addr", "add", "fd00:10:244:3::1/64", "dev", "cni0", "nodad");
    }

    private async Task<string> RouteGetAsync(string address)
    {
        CommandResult result = await _runner.RunAsync("ip", ["route", "get", address], null, TestContext.Current.CancellationToken);
        return result.Succeeded ? result.StandardOutput : "failed: " + result.StandardError.Trim();
    }

    [Fact]
    public async Task The_blackhole_route_never_takes_the_pod_bridges_route_whichever_comes_first()
    {
        RequireKernel("ip");
        CancellationToken ct = TestContext.Current.CancellationToken;
        await InNs("ip", "link", "set", "lo", "up");

        // cni0 present first (flannel restarted on a node with pods): the bridge's route stays and keeps winning.
        await AddPodBridgeAsync();
        using (var rules = new Flannel.Agent.TrafficManagerRules(_runner, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<Flannel.Agent.TrafficManagerRules>.Instance))
        {
            await rules.EnsureAsync(BlackholeOnly, ct);
            Assert.Contains("10.244.3.0/24 dev cni0 proto kernel", await InNs("ip", "-4", "route", "show", "10.244.3.0/24"), StringComparison.Ordinal);
            Assert.Contains("dev cni0", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);
            Assert.Contains("dev cni0", await RouteGetAsync("fd00:10:244:3::7"), StringComparison.Ordinal);
            await rules.EnsureAsync(BlackholeOnly with { IsResync = true }, ct);
            Assert.Contains("dev cni0", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);

            // The bridge loses its address (its last pod is gone, or it is deleted): the blackhole catches the subnet.
            await InNs("ip", "addr", "flush", "dev", "cni0");
            Assert.StartsWith("failed:", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);
            Assert.DoesNotContain("cni0", await RouteGetAsync("fd00:10:244:3::7"), StringComparison.Ordinal);

            // cni0 configured after the blackhole (the first pod of a fresh node): the bridge's route wins again.
            await InNs("ip", "addr", "add", "10.244.3.1/24", "dev", "cni0");
            await InNs("ip", "-6", "addr", "add", "fd00:10:244:3::1/64", "dev", "cni0", "nodad");
            Assert.Contains("dev cni0", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);
            Assert.Contains("dev cni0", await RouteGetAsync("fd00:10:244:3::7"), StringComparison.Ordinal);
            await rules.EnsureAsync(BlackholeOnly with { IsResync = true }, ct);
            Assert.Contains("dev cni0", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_metric_0_blackhole_left_by_an_earlier_version_is_replaced_by_the_low_priority_one()
    {
        RequireKernel("ip");
        CancellationToken ct = TestContext.Current.CancellationToken;
        await InNs("ip", "link", "set", "lo", "up");
        await InNs("ip", "route", "add", "blackhole", "10.244.3.0/24", "proto", "70");
        await AddPodBridgeAsync();
        Assert.StartsWith("failed:", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);

        using var rules = new Flannel.Agent.TrafficManagerRules(_runner, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<Flannel.Agent.TrafficManagerRules>.Instance);
        await rules.EnsureAsync(BlackholeOnly, ct);

        Assert.Contains("dev cni0", await RouteGetAsync("10.244.3.7"), StringComparison.Ordinal);
        Assert.Equal("blackhole 10.244.3.0/24 proto 70 metric 4294967295", (await InNs("ip", "-4", "route", "show", "type", "blackhole")).Trim());
    }

    private static Flannel.Agent.TrafficRulesRequest BlackholeOnly { get; } = new()
    {
        Config = Flannel.Configuration.NetworkConfig.Parse(
            """{"Network":"10.244.0.0/16","IPv6Network":"fd00:10:244::/56","EnableIPv6":true,"Backend":{"Type":"vxlan"}}""").Validate(),
        Lease = new Flannel.Subnets.Lease
        {
            Subnet = IPNetwork.Parse("10.244.3.0/24"),
            IPv6Subnet = IPNetwork.Parse("fd00:10:244:3::/64"),
            Attributes = new Flannel.Subnets.LeaseAttributes { PublicIP = IPAddress.Parse("198.18.0.3"), BackendType = "vxlan" },
        },
        IpMasq = false,
        ForwardRules = false,
        BlackholeRoute = true,
    };
}
