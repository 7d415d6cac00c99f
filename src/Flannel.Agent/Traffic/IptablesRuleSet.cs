using System.Globalization;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace Flannel.Agent.Traffic;

/// <summary>iptables or ip6tables: the program names and the family's multicast range.</summary>
internal sealed record IptablesFamily(string Name, string Iptables, string Save, string Restore, string Multicast)
{
    public static readonly IptablesFamily IPv4 = new("IPv4", "iptables", "iptables-save", "iptables-restore", "224.0.0.0/4");
    public static readonly IptablesFamily IPv6 = new("IPv6", "ip6tables", "ip6tables-save", "ip6tables-restore", "ff00::/8");
}

/// <summary>
/// One flannel chain and the jump into it: <c>FLANNEL-POSTRTG</c> (nat, jumped to from POSTROUTING) or
/// <c>FLANNEL-FWD</c> (filter, from FORWARD). Rules are argument lists exactly as flannel passes them to iptables.
/// </summary>
internal sealed record IptablesRuleSet(string Table, string Chain, string JumpFrom, IReadOnlyList<string> JumpRule, IReadOnlyList<IReadOnlyList<string>> Rules)
{
    public const string MasqChain = "FLANNEL-POSTRTG";
    public const string ForwardChain = "FLANNEL-FWD";
    public const string KubeProxyMark = "0x4000/0x4000";
    private const string MasqComment = "flanneld masq";
    private const string ForwardComment = "flanneld forward";

    /// <summary>The jump rule as <c>iptables -S</c> prints it.</summary>
    public string JumpLine => Line(JumpFrom, JumpRule);

    /// <summary>The chain's rules as <c>iptables -S</c> / <c>iptables-save</c> print them, in order.</summary>
    public IReadOnlyList<string> RuleLines => Rules.Select(r => Line(Chain, r)).ToArray();

    /// <summary>
    /// flannel's masquerade rules (<c>pkg/trafficmngr/iptables</c> masqRules/masqIP6Rules), in flannel's order:
    /// skip kube-proxy-marked packets, never NAT inside the overlay, never NAT traffic to this node's pods from
    /// outside, NAT pod traffic leaving the cluster (except multicast) and host traffic into the cluster.
    /// </summary>
    public static IptablesRuleSet Masquerade(IptablesFamily family, IPNetwork cluster, IPNetwork podSubnet, bool fullyRandom)
    {
        string c = cluster.ToString();
        string pod = podSubnet.ToString();
        string[] masquerade = fullyRandom ? ["-j", "MASQUERADE", "--random-fully"] : ["-j", "MASQUERADE"];
        return new IptablesRuleSet("nat", MasqChain, "POSTROUTING",
            ["-m", "comment", "--comment", MasqComment, "-j", MasqChain],
            [
                ["-m", "mark", "--mark", KubeProxyMark, "-m", "comment", "--comment", MasqComment, "-j", "RETURN"],
                ["-s", pod, "-d", c, "-m", "comment", "--comment", MasqComment, "-j", "RETURN"],
                ["-s", c, "-d", pod, "-m", "comment", "--comment", MasqComment, "-j", "RETURN"],
                ["!", "-s", c, "-d", pod, "-m", "comment", "--comment", MasqComment, "-j", "RETURN"],
                ["-s", c, "!", "-d", family.Multicast, "-m", "comment", "--comment", MasqComment, .. masquerade],
                ["!", "-s", c, "-d", c, "-m", "comment", "--comment", MasqComment, .. masquerade],
            ]);
    }

    /// <summary>flannel's forward rules: accept everything from and to the cluster network.</summary>
    public static IptablesRuleSet Forward(IPNetwork cluster)
    {
        string c = cluster.ToString();
        return new IptablesRuleSet("filter", ForwardChain, "FORWARD",
            ["-m", "comment", "--comment", ForwardComment, "-j", ForwardChain],
            [
                ["-s", c, "-m", "comment", "--comment", ForwardComment, "-j", "ACCEPT"],
                ["-d", c, "-m", "comment", "--comment", ForwardComment, "-j", "ACCEPT"],
            ]);
    }

    /// <summary>
    /// A rule line as iptables-save prints it and iptables-restore reads it: arguments joined by spaces, the
    /// comment quoted (flannel's restore payload quotes it the same way).
    /// </summary>
    public static string Line(string chain, IReadOnlyList<string> rule) => Command("-A", chain, rule);

    public static string Command(string action, string chain, IReadOnlyList<string> rule)
    {
        var text = new StringBuilder(action).Append(' ').Append(chain);
        for (int i = 0; i < rule.Count; i++)
        {
            text.Append(' ');
            if (i > 0 && rule[i - 1] == "--comment")
            {
                text.Append('"').Append(rule[i]).Append('"');
            }
            else
            {
                text.Append(rule[i]);
            }
        }

        return text.ToString();
    }
}

/// <summary>What <c>iptables-save -t TABLE</c> says about one table: its chains and their rule lines in order.</summary>
internal sealed class IptablesSaveTable
{
    private readonly Dictionary<string, List<string>> _rules = new(StringComparer.Ordinal);

    public bool HasChain(string chain) => _rules.ContainsKey(chain);

    public IReadOnlyList<string> RulesOf(string chain) => _rules.TryGetValue(chain, out List<string>? rules) ? rules : [];

    /// <summary>Parses iptables-save output for one table (comments, counters and COMMIT are skipped).</summary>
    public static IptablesSaveTable Parse(string output)
    {
        var table = new IptablesSaveTable();
        foreach (string raw in output.Split('\n'))
        {
            string line = raw.TrimEnd('\r').Trim();
            if (line.StartsWith(':'))
            {
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                string chain = space < 0 ? line[1..] : line[1..space];
                table._rules.TryAdd(chain, []);
            }
            else if (line.StartsWith("-A ", StringComparison.Ordinal))
            {
                int end = line.IndexOf(' ', 3);
                string chain = end < 0 ? line[3..] : line[3..end];
                if (!table._rules.TryGetValue(chain, out List<string>? rules))
                {
                    rules = [];
                    table._rules[chain] = rules;
                }

                rules.Add(line);
            }
        }

        return table;
    }
}

/// <summary>What an iptables binary supports; both flags arrived in iptables 1.6.2, which is flannel's test too.</summary>
internal sealed partial record IptablesCapabilities(bool RandomFully, bool Wait)
{
    public static async Task<IptablesCapabilities> ProbeAsync(ICommandRunner runner, IptablesFamily family, CancellationToken cancellationToken)
    {
        CommandResult result;
        try
        {
            result = await runner.RunAsync(family.Iptables, ["--version"], null, cancellationToken).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new TrafficRulesException($"{family.Iptables} is not installed: {e.Message}", e);
        }

        if (!result.Succeeded)
        {
            throw new TrafficRulesException($"{family.Iptables} --version failed ({result.ExitCode}): {result.StandardError.Trim()}");
        }

        Match version = VersionPattern().Match(result.StandardOutput);
        bool modern = version.Success
            && new Version(int.Parse(version.Groups[1].ValueSpan, CultureInfo.InvariantCulture), int.Parse(version.Groups[2].ValueSpan, CultureInfo.InvariantCulture),
                int.Parse(version.Groups[3].ValueSpan, CultureInfo.InvariantCulture)) >= new Version(1, 6, 2);
        return new IptablesCapabilities(modern, modern);
    }

    [GeneratedRegex(@"v(\d+)\.(\d+)\.(\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex VersionPattern();
}
