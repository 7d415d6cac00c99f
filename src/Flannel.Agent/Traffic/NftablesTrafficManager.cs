using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent.Traffic;

/// <summary>
/// flannel's nftables mode (<c>"EnableNFTables": true</c>): tables <c>ip flannel-ipv4</c> / <c>ip6 flannel-ipv6</c>
/// with chains <c>postrtg</c> (nat, postrouting, srcnat) and <c>forward</c> (filter, forward), but with the
/// iptables mode's semantics where flannel's nftables code differs:
/// <list type="bullet">
/// <item>the kube-proxy mark is matched masked (<c>meta mark &amp; 0x00004000 == 0x00004000</c>, iptables'
/// <c>--mark 0x4000/0x4000</c>), not as an exact value;</item>
/// <item>the "traffic from outside to this node's pods" rule tests <c>saddr != cluster</c> as iptables does (flannel's
/// <c>saddr != pod</c> makes the last masquerade rule unreachable);</item>
/// <item>the IPv6 table exists only when IPv6 is enabled;</item>
/// <item>the chains are resynced: each <c>nft list chain</c> is compared with what was read back right after the
/// last apply, and the chain is rewritten when it differs or is gone.</item>
/// </list>
/// Every change is one <c>nft -f -</c> transaction (flush and refill of the chain included), so it is atomic.
/// </summary>
internal sealed class NftablesTrafficManager : TrafficManagerBase
{
    private const string PostroutingChain = "postrtg";
    private const string ForwardChain = "forward";

    private readonly Dictionary<(NftFamily Family, string Chain), Installed> _installed = [];
    private bool? _fullyRandomSupported;

    public NftablesTrafficManager(ICommandRunner runner, TrafficManagerOptions options, TimeProvider timeProvider, ILogger logger)
        : base(runner, options, timeProvider, logger)
    {
    }

    public override Task InitializeAsync(CancellationToken cancellationToken) =>
        LockedAsync(async ct =>
        {
            TrafficLog.StartingMode(Logger, "nftables");
            foreach (IptablesFamily family in new[] { IptablesFamily.IPv4, IptablesFamily.IPv6 })
            {
                await DeleteIptablesChainsAsync(family, ct).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);

    public override Task SetupAndEnsureMasqRulesAsync(TrafficNetworks current, TrafficNetworks? previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(current);
        return LockedAsync(async ct =>
        {
            bool fullyRandom = !Options.DisableFullyRandom && await ProbeFullyRandomAsync(ct).ConfigureAwait(false);
            if (current.HasIPv4)
            {
                await InstallAsync(new Installed(NftFamily.IPv4, PostroutingChain,
                    MasqueradeScript(NftFamily.IPv4, current.Network!.Value, current.Subnet!.Value, fullyRandom)), ct).ConfigureAwait(false);
            }

            if (current.HasIPv6)
            {
                await InstallAsync(new Installed(NftFamily.IPv6, PostroutingChain,
                    MasqueradeScript(NftFamily.IPv6, current.IPv6Network!.Value, current.IPv6Subnet!.Value, fullyRandom)), ct).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    public override Task SetupAndEnsureForwardRulesAsync(TrafficNetworks networks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(networks);
        return LockedAsync(async ct =>
        {
            if (networks.Network is { } v4)
            {
                await InstallAsync(new Installed(NftFamily.IPv4, ForwardChain, ForwardScript(NftFamily.IPv4, v4)), ct).ConfigureAwait(false);
            }

            if (networks.IPv6Network is { } v6)
            {
                await InstallAsync(new Installed(NftFamily.IPv6, ForwardChain, ForwardScript(NftFamily.IPv6, v6)), ct).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    protected override async Task ResyncCoreAsync(List<string> repaired, List<Exception> errors, CancellationToken cancellationToken)
    {
        foreach (Installed installed in _installed.Values.ToArray())
        {
            CommandResult listing = await ListChainAsync(installed, cancellationToken).ConfigureAwait(false);
            if (listing.Succeeded && listing.StandardOutput == installed.Reference)
            {
                continue;
            }

            try
            {
                await ApplyAsync(installed, cancellationToken).ConfigureAwait(false);
                repaired.Add($"{installed.Family.Keyword} {installed.Family.Table} {installed.Chain}");
            }
            catch (TrafficRulesException e)
            {
                errors.Add(e);
            }
        }
    }

    /// <summary>The masquerade chain with the iptables mode's semantics (see the class remarks).</summary>
    internal static string MasqueradeScript(NftFamily family, IPNetwork cluster, IPNetwork podSubnet, bool fullyRandom)
    {
        string c = cluster.ToString();
        string pod = podSubnet.ToString();
        string f = family.Keyword;
        string masquerade = fullyRandom ? "masquerade fully-random" : "masquerade";
        string multicast = family == NftFamily.IPv6 ? "ff00::/8" : "224.0.0.0/4";
        return ChainScript(family, PostroutingChain, "nat", "postrouting", "srcnat", "chain to manage traffic masquerading by flannel",
        [
            "meta mark & 0x00004000 == 0x00004000 return",
            $"{f} saddr {pod} {f} daddr {c} return",
            $"{f} saddr {c} {f} daddr {pod} return",
            $"{f} saddr != {c} {f} daddr {pod} return",
            $"{f} saddr {c} {f} daddr != {multicast} {masquerade}",
            $"{f} saddr != {c} {f} daddr {c} {masquerade}",
        ]);
    }

    internal static string ForwardScript(NftFamily family, IPNetwork cluster) =>
        ChainScript(family, ForwardChain, "filter", "forward", "filter", "chain to accept flannel traffic",
        [
            $"{family.Keyword} saddr {cluster} accept",
            $"{family.Keyword} daddr {cluster} accept",
        ]);

    /// <summary>
    /// One transaction: create the table and the base chain if needed, flush the chain and fill it. The kernel
    /// applies it as a whole, so packets see either the old chain or the new one.
    /// </summary>
    private static string ChainScript(NftFamily family, string chain, string type, string hook, string priority, string comment, IReadOnlyList<string> rules)
    {
        string table = $"{family.Keyword} {family.Table}";
        var script = new StringBuilder();
        script.Append("add table ").Append(table).Append(" { comment \"rules for ").Append(family.Table).Append("\" ; }\n");
        script.Append("add chain ").Append(table).Append(' ').Append(chain)
            .Append(" { type ").Append(type).Append(" hook ").Append(hook).Append(" priority ").Append(priority)
            .Append(" ; policy accept ; comment \"").Append(comment).Append("\" ; }\n");
        script.Append("flush chain ").Append(table).Append(' ').Append(chain).Append('\n');
        foreach (string rule in rules)
        {
            script.Append("add rule ").Append(table).Append(' ').Append(chain).Append(' ').Append(rule).Append('\n');
        }

        return script.ToString();
    }

    private async Task InstallAsync(Installed installed, CancellationToken cancellationToken)
    {
        _installed[(installed.Family, installed.Chain)] = installed;
        CommandResult listing = await ListChainAsync(installed, cancellationToken).ConfigureAwait(false);
        if (listing.Succeeded && installed.Reference is not null && listing.StandardOutput == installed.Reference)
        {
            return;
        }

        await ApplyAsync(installed, cancellationToken).ConfigureAwait(false);
    }

    private async Task ApplyAsync(Installed installed, CancellationToken cancellationToken)
    {
        TrafficLog.ApplyingRestore(Logger, "nft", installed.Script);
        await RunCheckedAsync("nft", ["-f", "-"], installed.Script, cancellationToken).ConfigureAwait(false);

        // What nft prints for the chain right after the apply is what a resync expects to find, provided it holds
        // as many rules as were written (a chain changed in between must not become the reference).
        CommandResult listing = await ListChainAsync(installed, cancellationToken).ConfigureAwait(false);
        installed.Reference = listing.Succeeded && CountRules(listing.StandardOutput) == installed.RuleCount ? listing.StandardOutput : null;
    }

    /// <summary>The rule lines of an <c>nft list chain</c> listing (not the table/chain lines, comment, type or braces).</summary>
    internal static int CountRules(string listing) =>
        listing.Split('\n').Count(line => line.StartsWith("\t\t", StringComparison.Ordinal)
            && !line.StartsWith("\t\tcomment ", StringComparison.Ordinal)
            && !line.StartsWith("\t\ttype ", StringComparison.Ordinal));

    private Task<CommandResult> ListChainAsync(Installed installed, CancellationToken cancellationToken) =>
        TryRunAsync("nft", ["list", "chain", installed.Family.Keyword, installed.Family.Table, installed.Chain], null, cancellationToken);

    /// <summary>flannel's probe: can the kernel and nft do <c>masquerade fully-random</c>? Checked with <c>nft -c</c> (nothing is committed).</summary>
    private async Task<bool> ProbeFullyRandomAsync(CancellationToken cancellationToken)
    {
        if (_fullyRandomSupported is { } known)
        {
            return known;
        }

        const string Probe =
            "add table ip flannel-ipv4 { comment \"rules for flannel-ipv4\" ; }\n" +
            "add chain ip flannel-ipv4 masqueradeTest { type nat hook postrouting priority srcnat ; comment \"chain to test if masquerade random fully is supported\" ; }\n" +
            "add rule ip flannel-ipv4 masqueradeTest ip saddr != 127.0.0.1 masquerade fully-random\n";
        CommandResult result = await TryRunAsync("nft", ["-c", "-f", "-"], Probe, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode == 127)
        {
            throw new TrafficRulesException($"nft is not installed: {result.StandardError.Trim()}");
        }

        if (!result.Succeeded)
        {
            TrafficLog.FullyRandomUnsupported(Logger, result.StandardError.Trim());
        }

        _fullyRandomSupported = result.Succeeded;
        return result.Succeeded;
    }

    /// <summary>
    /// Removes the iptables mode's chains and the jumps into them, in one restore transaction per table.
    /// (flannel tries to delete both chains from the nat table without removing the jumps, which fails.)
    /// </summary>
    private async Task DeleteIptablesChainsAsync(IptablesFamily family, CancellationToken cancellationToken)
    {
        (string Table, string Chain, string JumpFrom, string[] Jump)[] chains =
        [
            ("nat", IptablesRuleSet.MasqChain, "POSTROUTING", ["-m", "comment", "--comment", "flanneld masq", "-j", IptablesRuleSet.MasqChain]),
            ("filter", IptablesRuleSet.ForwardChain, "FORWARD", ["-m", "comment", "--comment", "flanneld forward", "-j", IptablesRuleSet.ForwardChain]),
        ];
        foreach ((string table, string chain, string jumpFrom, string[] jump) in chains)
        {
            CommandResult save = await TryRunAsync(family.Save, ["-t", table], null, cancellationToken).ConfigureAwait(false);
            if (!save.Succeeded)
            {
                continue; // no iptables for this family, or the table was never used
            }

            IptablesSaveTable current = IptablesSaveTable.Parse(save.StandardOutput);
            if (!current.HasChain(chain))
            {
                continue;
            }

            string jumpLine = IptablesRuleSet.Line(jumpFrom, jump);
            var payload = new StringBuilder();
            payload.Append('*').Append(table).Append('\n');
            payload.Append(':').Append(chain).Append(" - [0:0]\n");
            foreach (string line in current.RulesOf(jumpFrom).Where(l => l == jumpLine))
            {
                payload.Append(IptablesRuleSet.Command("-D", jumpFrom, jump)).Append('\n');
            }

            payload.Append("-X ").Append(chain).Append('\n');
            payload.Append("COMMIT\n");

            IptablesCapabilities capabilities = await IptablesCapabilities.ProbeAsync(Runner, family, cancellationToken).ConfigureAwait(false);
            string[] arguments = capabilities.Wait ? ["--noflush", "--wait"] : ["--noflush"];
            CommandResult result = await TryRunAsync(family.Restore, arguments, payload.ToString(), cancellationToken).ConfigureAwait(false);
            if (result.Succeeded)
            {
                TrafficLog.IptablesChainRemoved(Logger, family.Name, table, chain);
            }
            else
            {
                TrafficLog.OtherModeCleanupSkipped(Logger, "iptables", result.StandardError);
            }
        }
    }

    /// <summary>An nftables family keyword and flannel's table for it.</summary>
    internal sealed record NftFamily(string Keyword, string Table)
    {
        public static readonly NftFamily IPv4 = new("ip", "flannel-ipv4");
        public static readonly NftFamily IPv6 = new("ip6", "flannel-ipv6");
    }

    private sealed class Installed(NftFamily family, string chain, string script)
    {
        public NftFamily Family { get; } = family;

        public string Chain { get; } = chain;

        public string Script { get; } = script;

        public int RuleCount { get; } = script.Split('\n').Count(line => line.StartsWith("add rule ", StringComparison.Ordinal));

        /// <summary>The <c>nft list chain</c> output right after the last apply; null before the first one.</summary>
        public string? Reference { get; set; }
    }
}
