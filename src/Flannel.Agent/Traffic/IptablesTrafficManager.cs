using System.Text;
using Microsoft.Extensions.Logging;

namespace Flannel.Agent.Traffic;

/// <summary>
/// flannel's iptables mode, with the same chains, rule text, order and comments (FLANNEL-POSTRTG in nat,
/// FLANNEL-FWD in filter), but make-before-break and cheaper to keep:
/// <list type="bullet">
/// <item>no flush at startup: the current chains are read with one <c>iptables-save -t TABLE</c>; when they already
/// hold exactly the desired rules nothing is touched, otherwise the chain is rewritten and the jump rule fixed in
/// ONE <c>iptables-restore --noflush</c> transaction, so the kernel switches from the old rule set to the new one
/// with no moment in between (flannel flushes its chains first, which drops masquerading for a while);</item>
/// <item>a resync reads one <c>iptables-save</c> per table (flannel forks one <c>iptables -C</c> per rule) and also
/// repairs rules that are present but out of order or duplicated;</item>
/// <item>old rules for a previous network or subnet disappear in the same transaction, because the whole chain is
/// replaced.</item>
/// </list>
/// </summary>
internal sealed class IptablesTrafficManager : TrafficManagerBase
{
    private static readonly string[] NftTables = ["ip flannel-ipv4", "ip6 flannel-ipv6"];

    // The installed rule sets, keyed by family and chain, with the rule lines a resync expects to read back.
    private readonly Dictionary<(IptablesFamily Family, string Chain), Installed> _installed = [];
    private readonly Dictionary<IptablesFamily, IptablesCapabilities> _capabilities = [];

    public IptablesTrafficManager(ICommandRunner runner, TrafficManagerOptions options, TimeProvider timeProvider, ILogger logger)
        : base(runner, options, timeProvider, logger)
    {
    }

    public override Task InitializeAsync(CancellationToken cancellationToken) =>
        LockedAsync(async ct =>
        {
            TrafficLog.StartingMode(Logger, "iptables");
            await DeleteNftablesTablesAsync(ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public override Task SetupAndEnsureMasqRulesAsync(TrafficNetworks current, TrafficNetworks? previous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(current);
        return LockedAsync(async ct =>
        {
            if (current.HasIPv4)
            {
                LogRecycling(current.Network, current.Subnet, previous?.Network, previous?.Subnet);
                IptablesCapabilities capabilities = await GetCapabilitiesAsync(IptablesFamily.IPv4, ct).ConfigureAwait(false);
                await InstallAsync(IptablesFamily.IPv4,
                    IptablesRuleSet.Masquerade(IptablesFamily.IPv4, current.Network!.Value, current.Subnet!.Value, UseFullyRandom(capabilities)), ct).ConfigureAwait(false);
            }

            if (current.HasIPv6)
            {
                LogRecycling(current.IPv6Network, current.IPv6Subnet, previous?.IPv6Network, previous?.IPv6Subnet);
                IptablesCapabilities capabilities = await GetCapabilitiesAsync(IptablesFamily.IPv6, ct).ConfigureAwait(false);
                await InstallAsync(IptablesFamily.IPv6,
                    IptablesRuleSet.Masquerade(IptablesFamily.IPv6, current.IPv6Network!.Value, current.IPv6Subnet!.Value, UseFullyRandom(capabilities)), ct).ConfigureAwait(false);
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
                await InstallAsync(IptablesFamily.IPv4, IptablesRuleSet.Forward(v4), ct).ConfigureAwait(false);
            }

            if (networks.IPv6Network is { } v6)
            {
                await InstallAsync(IptablesFamily.IPv6, IptablesRuleSet.Forward(v6), ct).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    protected override async Task ResyncCoreAsync(List<string> repaired, List<Exception> errors, CancellationToken cancellationToken)
    {
        foreach (var group in _installed.Values.GroupBy(i => (i.Family, i.RuleSet.Table)).ToArray())
        {
            try
            {
                repaired.AddRange(await EnsureTableAsync(group.Key.Family, group.Key.Table, group.ToArray(), cancellationToken).ConfigureAwait(false));
            }
            catch (TrafficRulesException e)
            {
                errors.Add(e);
            }
        }
    }

    private bool UseFullyRandom(IptablesCapabilities capabilities) => capabilities.RandomFully && !Options.DisableFullyRandom;

    private void LogRecycling(System.Net.IPNetwork? network, System.Net.IPNetwork? subnet, System.Net.IPNetwork? previousNetwork, System.Net.IPNetwork? previousSubnet)
    {
        if (previousNetwork is not null && previousSubnet is not null && (network != previousNetwork || subnet != previousSubnet))
        {
            TrafficLog.RecyclingRules(Logger, network, subnet, previousNetwork, previousSubnet);
        }
    }

    private async Task InstallAsync(IptablesFamily family, IptablesRuleSet ruleSet, CancellationToken cancellationToken)
    {
        var installed = new Installed(family, ruleSet) { ExpectedLines = ruleSet.RuleLines };
        _installed[(family, ruleSet.Chain)] = installed;
        IReadOnlyList<string> applied = await EnsureTableAsync(family, ruleSet.Table, [installed], cancellationToken).ConfigureAwait(false);
        if (applied.Count == 0)
        {
            TrafficLog.RulesAlreadyInPlace(Logger, family.Name, ruleSet.Table, ruleSet.Chain);
        }
    }

    /// <summary>
    /// Reads the table once; re-applies, in one transaction, every rule set whose chain content or jump rule
    /// differs from what is expected. Returns the names of the rule sets it applied.
    /// </summary>
    private async Task<IReadOnlyList<string>> EnsureTableAsync(IptablesFamily family, string table, IReadOnlyList<Installed> ruleSets, CancellationToken cancellationToken)
    {
        IptablesSaveTable current = await SaveAsync(family, table, cancellationToken).ConfigureAwait(false);
        var stale = new List<(Installed RuleSet, int JumpCount)>();
        foreach (Installed installed in ruleSets)
        {
            IptablesRuleSet set = installed.RuleSet;
            int jumps = current.RulesOf(set.JumpFrom).Count(line => line == set.JumpLine);
            if (!current.HasChain(set.Chain) || jumps != 1 || !current.RulesOf(set.Chain).SequenceEqual(installed.ExpectedLines))
            {
                stale.Add((installed, jumps));
            }
        }

        if (stale.Count == 0)
        {
            return [];
        }

        string payload = BuildRestorePayload(table, stale);
        IptablesCapabilities capabilities = await GetCapabilitiesAsync(family, cancellationToken).ConfigureAwait(false);
        string[] arguments = capabilities.Wait ? ["--noflush", "--wait"] : ["--noflush"];
        TrafficLog.ApplyingRestore(Logger, family.Restore, payload);
        await RunCheckedAsync(family.Restore, arguments, payload, cancellationToken).ConfigureAwait(false);

        // Read back once: if this iptables prints a rule differently from flannel's text, expect its own spelling
        // from now on instead of re-applying every period.
        IptablesSaveTable after = await SaveAsync(family, table, cancellationToken).ConfigureAwait(false);
        var applied = new List<string>(stale.Count);
        foreach ((Installed installed, _) in stale)
        {
            IReadOnlyList<string> observed = after.RulesOf(installed.RuleSet.Chain);
            if (!observed.SequenceEqual(installed.ExpectedLines) && SameRulesSpelledDifferently(observed, installed.RuleSet.RuleLines))
            {
                string spelling = string.Join(" | ", observed);
                TrafficLog.RulesPrintedDifferently(Logger, family.Name, installed.RuleSet.Chain, spelling);
                installed.ExpectedLines = observed.ToArray();
            }

            applied.Add($"{family.Name} {table} {installed.RuleSet.Chain}");
        }

        return applied;
    }

    /// <summary>
    /// True when <paramref name="observed"/> holds the same rules as <paramref name="expected"/>, one for one, only
    /// quoted or ordered differently (the same words per rule). Anything else, such as a rule removed by someone
    /// between the apply and the read-back, must never become the expected state.
    /// </summary>
    internal static bool SameRulesSpelledDifferently(IReadOnlyList<string> observed, IReadOnlyList<string> expected)
    {
        if (observed.Count != expected.Count || observed.Count == 0)
        {
            return false;
        }

        static string Words(string line) =>
            string.Join(' ', line.Replace("\"", "", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));

        return observed.Zip(expected).All(pair => Words(pair.First) == Words(pair.Second));
    }

    /// <summary>
    /// The restore transaction: declaring a chain under <c>--noflush</c> empties it (or creates it), its rules follow,
    /// then the jump is appended if missing or de-duplicated. iptables-restore commits all of it atomically.
    /// </summary>
    internal static string BuildRestorePayload(string table, IReadOnlyList<(Installed RuleSet, int JumpCount)> ruleSets)
    {
        var payload = new StringBuilder();
        payload.Append('*').Append(table).Append('\n');
        foreach ((Installed installed, _) in ruleSets)
        {
            payload.Append(':').Append(installed.RuleSet.Chain).Append(" - [0:0]\n");
        }

        foreach ((Installed installed, int jumpCount) in ruleSets)
        {
            IptablesRuleSet set = installed.RuleSet;
            foreach (string line in set.RuleLines)
            {
                payload.Append(line).Append('\n');
            }

            if (jumpCount == 0)
            {
                payload.Append(set.JumpLine).Append('\n');
            }

            for (int extra = 1; extra < jumpCount; extra++)
            {
                payload.Append(IptablesRuleSet.Command("-D", set.JumpFrom, set.JumpRule)).Append('\n');
            }
        }

        payload.Append("COMMIT\n");
        return payload.ToString();
    }

    private async Task<IptablesSaveTable> SaveAsync(IptablesFamily family, string table, CancellationToken cancellationToken)
    {
        CommandResult result = await TryRunAsync(family.Save, ["-t", table], null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode == 127)
        {
            throw new TrafficRulesException($"{family.Save} is not installed: {result.StandardError.Trim()}");
        }

        // A table that was never used may not exist yet; the restore creates it.
        return IptablesSaveTable.Parse(result.Succeeded ? result.StandardOutput : "");
    }

    private async Task<IptablesCapabilities> GetCapabilitiesAsync(IptablesFamily family, CancellationToken cancellationToken)
    {
        if (!_capabilities.TryGetValue(family, out IptablesCapabilities? known))
        {
            known = await IptablesCapabilities.ProbeAsync(Runner, family, cancellationToken).ConfigureAwait(false);
            _capabilities[family] = known;
        }

        return known;
    }

    private async Task DeleteNftablesTablesAsync(CancellationToken cancellationToken)
    {
        CommandResult tables = await TryRunAsync("nft", ["list", "tables"], null, cancellationToken).ConfigureAwait(false);
        if (!tables.Succeeded)
        {
            TrafficLog.OtherModeCleanupSkipped(Logger, "nftables", tables.StandardError);
            return;
        }

        string[] present = tables.StandardOutput.Split('\n', StringSplitOptions.TrimEntries);
        string[] toDelete = NftTables.Where(t => present.Contains("table " + t)).ToArray();
        if (toDelete.Length == 0)
        {
            return;
        }

        string script = string.Concat(toDelete.Select(t => $"delete table {t}\n"));
        CommandResult result = await TryRunAsync("nft", ["-f", "-"], script, cancellationToken).ConfigureAwait(false);
        if (result.Succeeded)
        {
            TrafficLog.NftablesTablesRemoved(Logger, toDelete);
        }
        else
        {
            TrafficLog.OtherModeCleanupSkipped(Logger, "nftables", result.StandardError);
        }
    }

    internal sealed class Installed(IptablesFamily family, IptablesRuleSet ruleSet)
    {
        public IptablesFamily Family { get; } = family;

        public IptablesRuleSet RuleSet { get; } = ruleSet;

        public IReadOnlyList<string> ExpectedLines { get; set; } = [];
    }
}
