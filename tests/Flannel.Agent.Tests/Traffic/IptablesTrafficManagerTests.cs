using System.Net;
using Flannel.Agent.Traffic;
using Microsoft.Extensions.Time.Testing;
using Flannel.Testing;

namespace Flannel.Agent.Tests.Traffic;

public sealed class IptablesTrafficManagerTests
{
    private static readonly TrafficNetworks Node1 = new()
    {
        Network = IPNetwork.Parse("10.244.0.0/16"),
        Subnet = IPNetwork.Parse("10.244.1.0/24"),
    };

    private static readonly TrafficNetworks DualStack = Node1 with
    {
        IPv6Network = IPNetwork.Parse("fd00:10:244::/56"),
        IPv6Subnet = IPNetwork.Parse("fd00:10:244:1::/64"),
    };

    // flannel's e2e golden rules (e2e/rules.go), as iptables -S prints them.
    private static readonly string[] GoldenMasq =
    [
        "-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment \"flanneld masq\" -j RETURN",
        "-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j RETURN",
        "-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN",
        "-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment \"flanneld masq\" -j RETURN",
        "-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
        "-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully",
    ];

    private const string MasqJump = "-A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG";

    private readonly FakeFirewall _fw = new();

    private ITrafficManager Create(TrafficManagerOptions? options = null, TimeProvider? time = null) =>
        TrafficManager.Create(useNftables: false, _fw, options, time);

    [Fact]
    public async Task First_setup_is_one_restore_transaction_with_flannels_exact_rules()
    {
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken);

        string payload = Assert.Single(_fw.Restores("iptables-restore"));
        Assert.Equal(
            "*nat\n" +
            ":FLANNEL-POSTRTG - [0:0]\n" +
            string.Concat(GoldenMasq.Select(l => l + "\n")) +
            MasqJump + "\n" +
            "COMMIT\n",
            payload);
        Assert.Contains(_fw.Calls, c => c.File == "iptables-restore" && c.Args.SequenceEqual(["--noflush", "--wait"]));
        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
        Assert.Equal([MasqJump], _fw.Chain("iptables", "nat", "POSTROUTING"));
        Assert.DoesNotContain(_fw.Calls, c => c.File == "iptables" && c.Args.Contains("-F")); // never a separate flush
    }

    [Fact]
    public async Task Rules_already_in_place_are_left_untouched_at_startup()
    {
        _fw.SetChain("iptables", "nat", "FLANNEL-POSTRTG", GoldenMasq);
        _fw.SetChain("iptables", "nat", "POSTROUTING", "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING", MasqJump);
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureMasqRulesAsync(Node1, Node1, TestContext.Current.CancellationToken);
        Assert.Empty(_fw.Restores("iptables-restore"));
    }

    [Fact]
    public async Task A_changed_subnet_replaces_the_old_rules_in_the_same_transaction()
    {
        using ITrafficManager manager = Create();
        var old = new TrafficNetworks { Network = IPNetwork.Parse("10.244.0.0/16"), Subnet = IPNetwork.Parse("10.244.9.0/24") };
        await manager.SetupAndEnsureMasqRulesAsync(old, null, TestContext.Current.CancellationToken);
        await manager.SetupAndEnsureMasqRulesAsync(Node1, old, TestContext.Current.CancellationToken);

        Assert.Equal(2, _fw.Restores("iptables-restore").Count);
        string second = _fw.Restores("iptables-restore")[1];
        Assert.DoesNotContain("POSTROUTING", second, StringComparison.Ordinal); // the jump was already there
        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
        Assert.Equal([MasqJump], _fw.Chain("iptables", "nat", "POSTROUTING"));
    }

    [Fact]
    public async Task Resync_reads_one_save_per_table_and_repairs_a_missing_rule()
    {
        using ITrafficManager manager = Create();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, ct);
        await manager.SetupAndEnsureForwardRulesAsync(Node1, ct);
        Assert.Equal(0, await manager.ResyncAsync(ct));

        _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG").RemoveAt(2);
        int savesBefore = _fw.Calls.Count(c => c.File == "iptables-save");
        Assert.Equal(1, await manager.ResyncAsync(ct));

        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
        // one save per table to check, one more to read the repaired table back
        Assert.Equal(3, _fw.Calls.Count(c => c.File == "iptables-save") - savesBefore);
        Assert.DoesNotContain(_fw.Calls, c => c.File == "iptables" && c.Args.Contains("-C"));
    }

    [Fact]
    public async Task Resync_repairs_rules_out_of_order_and_duplicated_jumps()
    {
        using ITrafficManager manager = Create();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await manager.SetupAndEnsureMasqRulesAsync(Node1, null, ct);

        List<string> chain = _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG");
        (chain[1], chain[2]) = (chain[2], chain[1]);
        _fw.Chain("iptables", "nat", "POSTROUTING").Add(MasqJump);

        Assert.Equal(1, await manager.ResyncAsync(ct));
        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
        Assert.Equal([MasqJump], _fw.Chain("iptables", "nat", "POSTROUTING"));
        Assert.Contains("-D POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n", _fw.Restores("iptables-restore")[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resync_recreates_a_deleted_chain_and_jump()
    {
        using ITrafficManager manager = Create();
        CancellationToken ct = TestContext.Current.CancellationToken;
        await manager.SetupAndEnsureForwardRulesAsync(Node1, ct);
        _fw.SetChain("iptables", "filter", "FORWARD");
        _fw.SetChain("iptables", "filter", "FLANNEL-FWD");

        Assert.Equal(1, await manager.ResyncAsync(ct));
        Assert.Equal(
            [
                "-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
                "-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT",
            ],
            _fw.Chain("iptables", "filter", "FLANNEL-FWD"));
        Assert.Equal(["-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD"], _fw.Chain("iptables", "filter", "FORWARD"));
    }

    [Fact]
    public async Task Dual_stack_uses_ip6tables_with_the_ipv6_multicast_range()
    {
        using ITrafficManager manager = Create();
        await manager.SetupAndEnsureMasqRulesAsync(DualStack, null, TestContext.Current.CancellationToken);
        List<string> v6 = _fw.Chain("ip6tables", "nat", "FLANNEL-POSTRTG");
        Assert.Equal("-A FLANNEL-POSTRTG -s fd00:10:244:1::/64 -d fd00:10:244::/56 -m comment --comment \"flanneld masq\" -j RETURN", v6[1]);
        Assert.Equal("-A FLANNEL-POSTRTG -s fd00:10:244::/56 ! -d ff00::/8 -m comment --comment \"flanneld masq\" -j MASQUERADE --random-fully", v6[4]);
        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
    }

    [Fact]
    public async Task Fully_random_is_dropped_when_disabled_or_unsupported()
    {
        using (ITrafficManager disabled = Create(new TrafficManagerOptions { DisableFullyRandom = true }))
        {
            await disabled.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken);
        }

        Assert.DoesNotContain(_fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"), l => l.Contains("--random-fully", StringComparison.Ordinal));
        Assert.EndsWith("-j MASQUERADE", _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG")[^1], StringComparison.Ordinal);

        var old = new FakeFirewall { IptablesVersion = "iptables v1.6.1" };
        using ITrafficManager legacy = TrafficManager.Create(false, old);
        await legacy.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken);
        Assert.DoesNotContain(old.Chain("iptables", "nat", "FLANNEL-POSTRTG"), l => l.Contains("--random-fully", StringComparison.Ordinal));
        Assert.Contains(old.Calls, c => c.File == "iptables-restore" && c.Args.SequenceEqual(["--noflush"]));
    }

    [Fact]
    public async Task Initialize_deletes_the_nftables_tables_of_the_other_mode()
    {
        _fw.NftTables.Add("ip flannel-ipv4");
        _fw.NftTables.Add("ip6 flannel-ipv6");
        _fw.NftTables.Add("ip nat");
        using ITrafficManager manager = Create();
        await manager.InitializeAsync(TestContext.Current.CancellationToken);
        Assert.Equal(["ip nat"], _fw.NftTables);
        Assert.Equal("delete table ip flannel-ipv4\ndelete table ip6 flannel-ipv6\n", Assert.Single(_fw.NftScripts));
    }

    [Fact]
    public async Task A_failing_restore_surfaces_as_an_exception_naming_the_program()
    {
        var fw = new FailingRestore();
        using ITrafficManager manager = TrafficManager.Create(false, fw);
        TrafficRulesException e = await Assert.ThrowsAsync<TrafficRulesException>(
            () => manager.SetupAndEnsureMasqRulesAsync(Node1, null, TestContext.Current.CancellationToken));
        Assert.Contains("iptables-restore --noflush --wait failed with exit code 4: Another app is currently holding the xtables lock", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_family_does_not_stop_the_other_from_being_repaired()
    {
        var runner = new Ip6RestoreSwitch(_fw);
        using ITrafficManager manager = TrafficManager.Create(false, runner);
        CancellationToken ct = TestContext.Current.CancellationToken;
        await manager.SetupAndEnsureMasqRulesAsync(DualStack, null, ct);

        runner.FailIp6Restore = true;
        _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG").Clear();
        _fw.Chain("ip6tables", "nat", "FLANNEL-POSTRTG").Clear();
        TrafficRulesException e = await Assert.ThrowsAsync<TrafficRulesException>(() => manager.ResyncAsync(ct));
        Assert.StartsWith("ip6tables-restore", e.Message, StringComparison.Ordinal);
        Assert.Equal(GoldenMasq, _fw.Chain("iptables", "nat", "FLANNEL-POSTRTG"));
    }

    [Fact]
    public void Only_a_respelling_of_the_same_rules_is_adopted_as_the_expected_text()
    {
        string[] respelled = GoldenMasq.Select(l => l.Replace("\"flanneld masq\"", "flanneld\\ masq", StringComparison.Ordinal)).ToArray();
        string[] reordered = GoldenMasq.Select(l => l.Replace("-m comment --comment \"flanneld masq\" ", "", StringComparison.Ordinal) + " -m comment --comment \"flanneld masq\"").ToArray();
        Assert.True(IptablesTrafficManager.SameRulesSpelledDifferently(reordered, GoldenMasq));
        Assert.False(IptablesTrafficManager.SameRulesSpelledDifferently(GoldenMasq[1..], GoldenMasq)); // a rule vanished
        Assert.False(IptablesTrafficManager.SameRulesSpelledDifferently([], GoldenMasq));
        Assert.False(IptablesTrafficManager.SameRulesSpelledDifferently(respelled, GoldenMasq)); // different words
    }

    private sealed class Ip6RestoreSwitch(FakeFirewall inner) : ICommandRunner
    {
        public bool FailIp6Restore { get; set; }

        public Task<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken) =>
            FailIp6Restore && fileName == "ip6tables-restore"
                ? Task.FromResult(new CommandResult(1, "", "ip6tables-restore: unable to initialize table 'nat'"))
                : inner.RunAsync(fileName, arguments, standardInput, cancellationToken);
    }

    /// <summary>Every iptables-restore fails as when another program holds the xtables lock.</summary>
    private sealed class FailingRestore : ICommandRunner
    {
        private readonly FakeFirewall _inner = new();
        private int _restoreAttempts;

        public int RestoreAttempts => Volatile.Read(ref _restoreAttempts);

        public Task<CommandResult> RunAsync(string fileName, IReadOnlyList<string> arguments, string? standardInput, CancellationToken cancellationToken)
        {
            if (fileName == "iptables-restore")
            {
                Interlocked.Increment(ref _restoreAttempts);
                return Task.FromResult(new CommandResult(4, "", "Another app is currently holding the xtables lock.\n"));
            }

            return _inner.RunAsync(fileName, arguments, standardInput, cancellationToken);
        }
    }
}
