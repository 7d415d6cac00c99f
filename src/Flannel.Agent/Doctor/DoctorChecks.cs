using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Flannel.Netlink;
using Flannel.Subnets;

namespace Flannel.Agent.Doctor;

/// <summary>
/// The offline checks of <c>flanneld doctor</c>: each reads the gathered <see cref="DoctorFacts"/> and reports
/// findings with evidence and the commands that fix them. They never change anything; the fix commands are
/// printed for an operator, never run (and never pass through a shell).
/// </summary>
internal static class DoctorChecks
{
    public const string Mtu = "mtu";
    public const string BrNetfilter = "br-netfilter";
    public const string ForwardPolicy = "forward-policy";
    public const string RpFilter = "rp-filter";
    public const string DuplicateLeases = "duplicate-leases";
    public const string SubnetEnv = "subnet-env";
    public const string KernelObjects = "kernel-objects";
    public const string VxlanPort = "vxlan-port";

    private const int VxlanOverheadIPv4 = 50;
    private const int VxlanOverheadIPv6 = 70;

    /// <summary>Runs every offline check.</summary>
    public static IEnumerable<DoctorFinding> All(DoctorFacts facts) =>
        MtuFindings(facts)
            .Concat(BrNetfilterFindings(facts))
            .Concat(ForwardPolicyFindings(facts))
            .Concat(RpFilterFindings(facts))
            .Concat(DuplicateLeaseFindings(facts))
            .Concat(SubnetEnvFindings(facts))
            .Concat(KernelObjectFindings(facts))
            .Concat(WireGuardChecks.Findings(facts));

    // ------------------------------------------------------------------ MTU: device vs underlay vs subnet.env

    public static IEnumerable<DoctorFinding> MtuFindings(DoctorFacts facts)
    {
        var findings = new List<DoctorFinding>();
        LinkInfo[] devices = [.. facts.Kernel.FlannelVxlanDevices];
        int? envMtu = facts.SubnetEnv.Mtu;
        LinkInfo? cni0 = facts.Kernel.Link("cni0");
        if (devices.Length == 0)
        {
            // host-gw (no device): pods use the underlay MTU.
            LinkInfo? underlay = UnderlayByAddress(facts);
            if (underlay is not null && envMtu is { } mtu && mtu > underlay.Mtu)
            {
                findings.Add(new DoctorFinding(Mtu, FindingSeverity.Error,
                    $"subnet.env FLANNEL_MTU={mtu} is larger than {underlay.Name}'s MTU {underlay.Mtu}",
                    [$"{facts.SubnetFile}: FLANNEL_MTU={mtu}", $"ip link: {underlay.Name} mtu {underlay.Mtu}"],
                    ["restart flanneld so that it rewrites subnet.env with the interface's MTU, then recreate the pods (they keep the MTU they were created with)"]));
            }
        }

        // Pods must fit every flannel device, so with two (dual stack) subnet.env carries the smaller MTU: vxlan over
        // an IPv6 underlay has 20 bytes more overhead than over IPv4.
        LinkInfo? smallest = devices.MinBy(d => d.Mtu);
        foreach (LinkInfo device in devices)
        {
            bool v6 = device.Vxlan!.Local?.AddressFamily == AddressFamily.InterNetworkV6 || device.Name.StartsWith("flannel-v6", StringComparison.Ordinal);
            int overhead = v6 ? VxlanOverheadIPv6 : VxlanOverheadIPv4;
            LinkInfo? underlay = facts.Kernel.Link(device.Vxlan.UnderlayIndex)
                ?? (device.Vxlan.Local is { } local ? facts.Kernel.Link(facts.Kernel.Addresses.FirstOrDefault(a => a.Local.Equals(local))?.LinkIndex) : null);
            int? expected = facts.Leases.BackendMtuOverride is > 0 and var over ? over - overhead
                : underlay is not null ? underlay.Mtu - overhead
                : facts.Leases.AgentMtu;
            var evidence = new List<string> { $"ip link: {device.Name} mtu {device.Mtu}" };
            if (underlay is not null)
            {
                evidence.Add($"ip link: {underlay.Name} mtu {underlay.Mtu} (the vxlan device's underlay; VXLAN over IPv{(v6 ? 6 : 4)} adds {overhead} bytes)");
            }

            if (!v6 && envMtu is { } env)
            {
                evidence.Add($"{facts.SubnetFile}: FLANNEL_MTU={env}");
            }

            if (facts.Leases.AgentMtu is { } agentMtu && !v6)
            {
                evidence.Add($"the agent set MTU {agentMtu}");
            }

            int problems = findings.Count;
            if (underlay is not null && device.Mtu + overhead > underlay.Mtu)
            {
                findings.Add(new DoctorFinding(Mtu, FindingSeverity.Error,
                    $"{device.Name} MTU {device.Mtu} plus {overhead} bytes of VXLAN encapsulation exceeds {underlay.Name}'s MTU {underlay.Mtu}: large packets between pods are dropped or fragmented",
                    evidence,
                    [
                        Command("ip", "link", "set", "dev", device.Name, "mtu", Number(underlay.Mtu - overhead)),
                        "restart flanneld so that subnet.env (FLANNEL_MTU) follows, then recreate the pods (they keep the MTU they were created with)",
                    ]));
            }
            else if (expected is { } want && device.Mtu != want)
            {
                findings.Add(new DoctorFinding(Mtu, FindingSeverity.Error,
                    $"{device.Name} MTU is {device.Mtu}, not {want} as flannel sets it{(underlay is null ? string.Empty : $" from {underlay.Name}'s MTU {underlay.Mtu}")}: it was changed by hand or by another tool",
                    evidence,
                    [Command("ip", "link", "set", "dev", device.Name, "mtu", Number(want))]));
            }

            if (!v6 && envMtu is { } fileMtu && fileMtu != smallest!.Mtu && (expected is null || fileMtu != expected || device.Mtu == expected))
            {
                string whose = devices.Length > 1 ? $"{smallest.Name}'s MTU, the smaller of the flannel devices'" : $"{smallest.Name}'s MTU";
                findings.Add(new DoctorFinding(Mtu, FindingSeverity.Error,
                    $"subnet.env FLANNEL_MTU={fileMtu} differs from {smallest.Mtu}, {whose}: pods are created with the wrong MTU",
                    evidence,
                    ["restart flanneld so that it rewrites subnet.env, then recreate the pods"]));
            }

            if (!v6 && cni0 is not null && cni0.Mtu > device.Mtu)
            {
                findings.Add(new DoctorFinding(Mtu, FindingSeverity.Warning,
                    $"cni0's MTU {cni0.Mtu} is larger than {device.Name}'s {device.Mtu}: pods created before the change send packets too large for the overlay",
                    [.. evidence, $"ip link: cni0 mtu {cni0.Mtu}"],
                    ["recreate the pods on this node so that they get the current FLANNEL_MTU"]));
            }

            if (findings.Count == problems)
            {
                findings.Add(DoctorFinding.Pass(Mtu,
                    underlay is null
                        ? $"{device.Name} MTU {device.Mtu}"
                        : $"{device.Name} MTU {device.Mtu} = {underlay.Name} MTU {underlay.Mtu} - {overhead}{(envMtu is { } e && !v6 ? $"; subnet.env FLANNEL_MTU={e}" : string.Empty)}"));
            }
        }

        if (findings.Count == 0)
        {
            findings.Add(DoctorFinding.Pass(Mtu, envMtu is { } m ? $"subnet.env FLANNEL_MTU={m} fits the underlay" : "no flannel device and no subnet.env MTU to compare"));
        }

        return findings;
    }

    private static LinkInfo? UnderlayByAddress(DoctorFacts facts)
    {
        IPAddress? publicIP = facts.OwnLease?.Attributes.PublicIP;
        return publicIP is null ? null : facts.Kernel.Link(facts.Kernel.Addresses.FirstOrDefault(a => a.Local.Equals(publicIP))?.LinkIndex);
    }

    // ------------------------------------------------------------------ br_netfilter when masquerading with iptables

    public static IEnumerable<DoctorFinding> BrNetfilterFindings(DoctorFacts facts)
    {
        bool masquerading = facts.SubnetEnv.IPMasq == true || facts.Firewall.IptablesMasquerade;
        if (!masquerading || !facts.Firewall.IptablesMasquerade)
        {
            yield return DoctorFinding.Pass(BrNetfilter, masquerading
                ? "masquerading with nftables: bridge-nf-call-iptables does not apply"
                : "flannel does not masquerade on this node (FLANNEL_IPMASQ is not true)");
            yield break;
        }

        const string path = "net/bridge/bridge-nf-call-iptables";
        string? value = facts.Sysctl(path);
        string[] fix =
        [
            Command("modprobe", "br_netfilter"),
            Command("sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1"),
            "to keep it after a reboot: add br_netfilter to /etc/modules-load.d/ and the sysctl to /etc/sysctl.d/",
        ];
        if (value is null)
        {
            yield return new DoctorFinding(BrNetfilter, FindingSeverity.Warning,
                "flannel masquerades with iptables but br_netfilter is not loaded: traffic between pods on the cni0 bridge bypasses iptables (kube-proxy's Service rules and the masquerade rules do not see it)",
                [$"/proc/sys/{path} does not exist", "nat chain FLANNEL-POSTRTG exists"],
                fix);
        }
        else if (value != "1")
        {
            yield return new DoctorFinding(BrNetfilter, FindingSeverity.Warning,
                "flannel masquerades with iptables but bridge-nf-call-iptables is off: traffic between pods on the cni0 bridge bypasses iptables",
                [$"net.bridge.bridge-nf-call-iptables = {value}"],
                fix[1..]);
        }
        else
        {
            yield return DoctorFinding.Pass(BrNetfilter, "br_netfilter is loaded and bridge-nf-call-iptables = 1", $"net.bridge.bridge-nf-call-iptables = {value}");
        }
    }

    // ------------------------------------------------------------------ FORWARD policy DROP without flannel's accept rules

    public static IEnumerable<DoctorFinding> ForwardPolicyFindings(DoctorFacts facts)
    {
        string? network = facts.Leases.Network?.ToString() ?? facts.SubnetEnv.Network?.ToString();
        if (facts.Firewall.IptablesForward is not { } forward)
        {
            yield return new DoctorFinding(ForwardPolicy, FindingSeverity.Info, "iptables is not available; the FORWARD chain was not checked", [], []);
            yield break;
        }

        string[] lines = Lines(forward);
        string? policy = lines.FirstOrDefault(l => l.StartsWith("-P FORWARD ", StringComparison.Ordinal));
        bool dropping = policy is "-P FORWARD DROP" or "-P FORWARD REJECT";
        bool jumpsToFlannel = lines.Any(l => l.StartsWith("-A FORWARD", StringComparison.Ordinal) && l.Contains("-j FLANNEL-FWD", StringComparison.Ordinal));
        string[] flannelRules = facts.Firewall.IptablesFlannelForward is { } flannelChain ? Lines(flannelChain) : [];
        string[] effective = jumpsToFlannel ? [.. lines, .. flannelRules] : lines;
        bool acceptsSource = network is not null && AcceptsNetwork(effective, "-s", network);
        bool acceptsDestination = network is not null && AcceptsNetwork(effective, "-d", network);
        bool accepted = acceptsSource && acceptsDestination;
        if (!dropping)
        {
            yield return DoctorFinding.Pass(ForwardPolicy, $"the FORWARD chain's policy is {policy?["-P FORWARD ".Length..] ?? "ACCEPT"}", policy ?? "-P FORWARD ACCEPT");
        }
        else if (accepted)
        {
            yield return DoctorFinding.Pass(ForwardPolicy, $"FORWARD drops by default, and flannel's rules accept {network}", policy!, jumpsToFlannel ? "-A FORWARD ... -j FLANNEL-FWD" : "accept rules in FORWARD");
        }
        else
        {
            var evidence = new List<string> { $"iptables -S FORWARD: {policy}" };
            evidence.Add(facts.Firewall.IptablesFlannelForward is null ? "chain FLANNEL-FWD does not exist"
                : jumpsToFlannel ? "FORWARD jumps to FLANNEL-FWD" : "chain FLANNEL-FWD exists but no -A FORWARD ... -j FLANNEL-FWD rule jumps to it");
            if (!acceptsSource)
            {
                evidence.Add($"no rule reached from FORWARD accepts -s {network ?? "<network>"}");
            }

            if (!acceptsDestination)
            {
                evidence.Add($"no rule reached from FORWARD accepts -d {network ?? "<network>"}");
            }

            string net = network ?? "<network>";
            yield return new DoctorFinding(ForwardPolicy, FindingSeverity.Error,
                $"the FORWARD chain drops by default and nothing accepts the pod network {net}: traffic between pods on different nodes is dropped here",
                evidence,
                [
                    "start flanneld with --iptables-forward-rules=true (the default), or add the rules by hand:",
                    Command("iptables", "-A", "FORWARD", "-s", net, "-j", "ACCEPT"),
                    Command("iptables", "-A", "FORWARD", "-d", net, "-j", "ACCEPT"),
                ]);
        }

        // A base chain of another nftables table dropping forwarded traffic drops it whatever flannel's chains accept.
        if (facts.Firewall.NftRuleset is { } ruleset && network is not null)
        {
            foreach ((string table, string chain, string body) in NftForwardDropChains(ruleset))
            {
                if (table.Contains("flannel", StringComparison.Ordinal) || (body.Contains(network, StringComparison.Ordinal) && body.Contains("accept", StringComparison.Ordinal)))
                {
                    continue;
                }

                yield return new DoctorFinding(ForwardPolicy, FindingSeverity.Error,
                    $"nftables chain {chain} in table {table} drops forwarded traffic by default and does not accept {network}; a drop in any base chain drops the packet, whatever flannel's own chains accept",
                    [$"nft list ruleset: table {table} chain {chain} {{ type filter hook forward ... policy drop; }}"],
                    [
                        Command("nft", "insert", "rule", TableFamily(table), TableName(table), chain, "ip", "saddr", network, "accept"),
                        Command("nft", "insert", "rule", TableFamily(table), TableName(table), chain, "ip", "daddr", network, "accept"),
                    ]);
            }
        }
    }

    private static bool AcceptsNetwork(IEnumerable<string> rules, string flag, string network) =>
        rules.Any(r => r.Contains($"{flag} {network} ", StringComparison.Ordinal) && r.EndsWith("-j ACCEPT", StringComparison.Ordinal) && !r.Contains($"! {flag}", StringComparison.Ordinal));

    /// <summary>Base chains hooked on forward with policy drop, from <c>nft list ruleset</c> text.</summary>
    internal static IEnumerable<(string Table, string Chain, string Body)> NftForwardDropChains(string ruleset)
    {
        string table = string.Empty;
        string[] lines = ruleset.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.StartsWith("table ", StringComparison.Ordinal))
            {
                table = line["table ".Length..].TrimEnd('{', ' ');
                continue;
            }

            if (!line.StartsWith("chain ", StringComparison.Ordinal))
            {
                continue;
            }

            string chain = line["chain ".Length..].TrimEnd('{', ' ');
            var body = new System.Text.StringBuilder();
            int j = i + 1;
            for (; j < lines.Length && lines[j].Trim() != "}"; j++)
            {
                body.Append(lines[j].Trim()).Append('\n');
            }

            string text = body.ToString();
            if (text.Contains("hook forward", StringComparison.Ordinal) && text.Contains("policy drop", StringComparison.Ordinal))
            {
                yield return (table, chain, text);
            }

            i = j;
        }
    }

    private static string TableFamily(string table) => table.Split(' ', 2)[0];

    private static string TableName(string table) => table.Split(' ', 2) is [_, var name] ? name : table;

    // ------------------------------------------------------------------ strict rp_filter on the flannel device

    public static IEnumerable<DoctorFinding> RpFilterFindings(DoctorFacts facts)
    {
        LinkInfo[] devices = [.. facts.Kernel.FlannelVxlanDevices.Where(d => !d.Name.StartsWith("flannel-v6", StringComparison.Ordinal))];
        if (devices.Length == 0)
        {
            yield return DoctorFinding.Pass(RpFilter, "no IPv4 flannel device (rp_filter applies to IPv4 only)");
            yield break;
        }

        int? all = Sysctl.ReadInt(facts.Sysctl, "net/ipv4/conf/all/rp_filter");
        foreach (LinkInfo device in devices)
        {
            int? own = Sysctl.ReadInt(facts.Sysctl, $"net/ipv4/conf/{device.Name}/rp_filter");
            int effective = Math.Max(all ?? 0, own ?? 0); // the kernel uses the larger of conf.all and conf.<dev>
            string sysctlName = $"net.ipv4.conf.{device.Name.Replace('.', '/')}.rp_filter"; // sysctl(8) writes dots in names as slashes
            string[] evidence = [$"net.ipv4.conf.all.rp_filter = {Show(all)}", $"{sysctlName} = {Show(own)}", $"effective: {effective} ({RpFilterMode(effective)})"];
            if (effective == 1)
            {
                var fix = new List<string> { Command("sysctl", "-w", $"{sysctlName}=2") };
                if (all == 1)
                {
                    fix.Add(Command("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2") + "   (conf.all wins while it is larger)");
                }

                yield return new DoctorFinding(RpFilter, FindingSeverity.Warning,
                    $"strict reverse-path filtering on {device.Name}: packets from a peer's pods are dropped silently whenever the route back to them does not leave through {device.Name} (a missing or replaced route, DirectRouting, asymmetric paths)",
                    evidence,
                    fix);
            }
            else
            {
                yield return DoctorFinding.Pass(RpFilter, $"{device.Name}: rp_filter {effective} ({RpFilterMode(effective)})", evidence);
            }
        }
    }

    private static string RpFilterMode(int value) => value switch
    {
        0 => "off",
        1 => "strict",
        _ => "loose",
    };

    // ------------------------------------------------------------------ duplicate VtepMACs or PublicIPs

    public static IEnumerable<DoctorFinding> DuplicateLeaseFindings(DoctorFacts facts)
    {
        bool any = false;
        Lease? own = facts.OwnLease;
        foreach (IGrouping<MacAddress, Lease> group in facts.Leases.Leases
            .Select(l => (Lease: l, Mac: DoctorLeases.VtepMacOf(l)))
            .Where(x => x.Mac is not null)
            .GroupBy(x => x.Mac!.Value, x => x.Lease)
            .Where(g => g.Count() > 1))
        {
            any = true;
            yield return new DoctorFinding(DuplicateLeases, FindingSeverity.Error,
                $"{group.Count()} leases publish VtepMAC {group.Key}: the other nodes' neighbour and FDB entries for them collide, so traffic to one of them reaches the wrong node",
                [.. group.Select(Describe)],
                [
                    "on all but one of these nodes, recreate the vxlan device so that it gets a new MAC, then restart flanneld:",
                    Command("ip", "link", "delete", "flannel.1"),
                    .. StaleLeaseFix(facts, group, own),
                ]);
        }

        foreach (IGrouping<IPAddress, Lease> group in facts.Leases.Leases
            .Where(l => !l.Attributes.PublicIP.Equals(IPAddress.Any))
            .GroupBy(l => l.Attributes.PublicIP)
            .Where(g => g.Count() > 1))
        {
            any = true;
            yield return new DoctorFinding(DuplicateLeases, FindingSeverity.Error,
                $"{group.Count()} leases have PublicIP {group.Key}: every peer sends both subnets' traffic to one node, and the older lease is stale (a reinstalled or renamed node)",
                [.. group.Select(Describe)],
                [.. StaleLeaseFix(facts, group, own)]);
        }

        if (facts.Leases.Leases.Count == 0)
        {
            yield return new DoctorFinding(DuplicateLeases, FindingSeverity.Info, "no leases to compare (neither the agent nor the store answered)", [], []);
        }
        else if (!any)
        {
            yield return DoctorFinding.Pass(DuplicateLeases, $"{facts.Leases.Leases.Count} leases, no VtepMAC or PublicIP used twice");
        }
    }

    private static IEnumerable<string> StaleLeaseFix(DoctorFacts facts, IEnumerable<Lease> group, Lease? own)
    {
        IEnumerable<Lease> candidates = group.Where(l => own is null || l.Key != own.Key).OrderBy(l => l.Expiration ?? DateTimeOffset.MaxValue);
        if (facts.Leases.DeleteLeaseCommand is { } delete)
        {
            return candidates.Take(own is null ? group.Count() - 1 : group.Count()).Select(l => delete(l.Key) + "   (if that node no longer exists)");
        }

        return ["delete the lease of the node that no longer exists (etcd: etcdctl del <prefix>/subnets/<key>; kube: delete the stale Node object)"];
    }

    private static string Describe(Lease lease) =>
        $"lease {lease.Key}: PublicIP {lease.Attributes.PublicIP}, backend {lease.Attributes.BackendType ?? "?"} {lease.Attributes.BackendData ?? string.Empty}".TrimEnd()
        + (lease.Expiration is { } expires ? $", expires {expires.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z" : string.Empty);

    // ------------------------------------------------------------------ subnet.env vs the lease

    public static IEnumerable<DoctorFinding> SubnetEnvFindings(DoctorFacts facts)
    {
        var env = facts.SubnetEnv;
        string restart = "restart flanneld: it rewrites subnet.env from its lease";
        if (!env.Exists)
        {
            yield return new DoctorFinding(SubnetEnv, FindingSeverity.Error,
                $"{facts.SubnetFile} does not exist: the flannel CNI plugin cannot set up pods on this node",
                [$"{facts.SubnetFile}: no such file"],
                [restart, "or pass --subnet-file with the path flanneld writes"]);
            yield break;
        }

        var problems = new List<string>(env.Problems);
        Lease? own = facts.OwnLease;
        if (own?.Subnet is { } subnet && env.Subnet != subnet)
        {
            problems.Add($"FLANNEL_SUBNET is {(env.Subnet is { } s ? $"in {s}" : "missing")} but this node's lease is {subnet} ({own.Key}): new pods get addresses the other nodes route elsewhere");
        }

        if (own?.IPv6Subnet is { } subnet6 && env.IPv6Subnet != subnet6)
        {
            problems.Add($"FLANNEL_IPV6_SUBNET is {(env.IPv6Subnet is { } s6 ? $"in {s6}" : "missing")} but this node's lease is {subnet6}");
        }

        if (facts.Leases.Network is { } network && env.Network != network)
        {
            problems.Add($"FLANNEL_NETWORK is {env.Network?.ToString() ?? "missing"} but the network is {network}");
        }

        if (own is null)
        {
            yield return new DoctorFinding(SubnetEnv, FindingSeverity.Info,
                $"this node's lease was not found among the {facts.Leases.Leases.Count} leases, so subnet.env could not be compared with it",
                [$"{facts.SubnetFile}: FLANNEL_SUBNET in {env.Subnet?.ToString() ?? "?"}"],
                []);
        }

        if (problems.Count > 0)
        {
            yield return new DoctorFinding(SubnetEnv, FindingSeverity.Error,
                $"{facts.SubnetFile} is out of date or invalid",
                problems,
                [restart]);
        }
        else if (own is not null)
        {
            yield return DoctorFinding.Pass(SubnetEnv, $"{facts.SubnetFile} matches lease {own.Key}");
        }
    }

    // ------------------------------------------------------------------ kernel objects vs leases

    public static IEnumerable<DoctorFinding> KernelObjectFindings(DoctorFacts facts)
    {
        if (facts.Leases.Leases.Count == 0)
        {
            // Without leases every route would look stale: say nothing rather than something wrong.
            return [new DoctorFinding(KernelObjects, FindingSeverity.Info, "no leases to compare the kernel's objects with", [], [])];
        }

        if (facts.Leases.BackendType is { } backendType and not ("vxlan" or "host-gw"))
        {
            // Only vxlan and host-gw program a route (and neighbour/FDB entry) per peer. wireguard routes the whole
            // network through its device and keeps peers in the device, alloc programs nothing and extension runs
            // its own commands: judging them by per-peer routes would report every healthy peer as broken.
            return [new DoctorFinding(KernelObjects, FindingSeverity.Info,
                $"the {backendType} backend programs no per-peer routes; doctor judges kernel objects for vxlan and host-gw only", [], [])];
        }

        var findings = new List<DoctorFinding>();
        Lease? own = facts.OwnLease;
        Lease[] remote = [.. facts.RemoteLeases];
        IPNetwork? network = facts.Leases.Network ?? facts.SubnetEnv.Network;
        LinkInfo? device = facts.Kernel.FlannelVxlanDevices.FirstOrDefault(d => !d.Name.StartsWith("flannel-v6", StringComparison.Ordinal));
        bool vxlan = device is not null && (facts.Leases.BackendType is null or "vxlan");
        var leasedSubnets = remote.Where(l => l.Subnet is not null).ToDictionary(l => l.Subnet!.Value, l => l);
        RouteInfo[] routes = [.. facts.Kernel.Routes.Where(r => r.Destination.BaseAddress.AddressFamily == AddressFamily.InterNetwork)];

        // Missing: a peer with a lease but without its objects.
        int complete = 0;
        foreach (Lease lease in remote.Where(l => l.Subnet is not null))
        {
            IPNetwork subnet = lease.Subnet!.Value;
            var missing = new List<string>();
            RouteInfo? route = routes.FirstOrDefault(r => r.Destination == subnet);
            if (route is null)
            {
                missing.Add($"no route to {subnet}");
            }

            MacAddress? mac = DoctorLeases.VtepMacOf(lease);
            if (vxlan && mac is { } vtep && (route is null || route.LinkIndex == device!.Index))
            {
                IReadOnlyList<NeighborInfo> neighbors = facts.Kernel.Neighbors.GetValueOrDefault(device!.Index, []);
                NeighborInfo? neighbor = neighbors.FirstOrDefault(n => n.Address.Equals(subnet.BaseAddress));
                if (neighbor is null)
                {
                    missing.Add($"no neighbour {subnet.BaseAddress} on {device.Name}");
                }
                else if (neighbor.LinkLayerAddress != vtep)
                {
                    missing.Add($"neighbour {subnet.BaseAddress} on {device.Name} has lladdr {neighbor.LinkLayerAddress?.ToString() ?? "none"}, the lease says {vtep}");
                }

                IReadOnlyList<FdbEntryInfo> fdb = facts.Kernel.Fdb.GetValueOrDefault(device.Index, []);
                if (!fdb.Any(f => f.MacAddress == vtep && Equals(f.Destination, lease.Attributes.PublicIP)))
                {
                    FdbEntryInfo? other = fdb.FirstOrDefault(f => f.MacAddress == vtep);
                    missing.Add(other is null
                        ? $"no FDB entry {vtep} dst {lease.Attributes.PublicIP} on {device.Name}"
                        : $"FDB entry {vtep} on {device.Name} points to {other.Destination}, the lease says {lease.Attributes.PublicIP}");
                }
            }

            if (missing.Count == 0)
            {
                complete++;
                continue;
            }

            findings.Add(new DoctorFinding(KernelObjects, FindingSeverity.Error,
                $"peer {lease.Key} (public IP {lease.Attributes.PublicIP}) has a lease but not all of its kernel objects: pods cannot reach its pods",
                missing,
                [
                    "flanneld repairs these within its 10 s reconciliation; if they stay missing, read its log for kernel refusals (journalctl -u flanneld, or the flannel pod's log) and restart it",
                ]));
        }

        // Stale: objects for subnets no lease holds (a node that left while this agent was down, a foreign tool).
        var stale = new List<string>();
        var staleFix = new List<string>();
        foreach (RouteInfo route in routes)
        {
            if (network is not { } net || !Contains(net, route.Destination) || route.Destination == own?.Subnet || leasedSubnets.ContainsKey(route.Destination))
            {
                continue;
            }

            bool ours = route.Protocol == RouteDefaults.ProtocolFlannel || (device is not null && route.LinkIndex == device.Index);
            if (!ours || route.Destination.PrefixLength == net.PrefixLength || route.Type != RouteType.Unicast)
            {
                continue; // the cluster-wide route, blackholes and others' routes are not flannel's per-peer routes
            }

            string dev = facts.Kernel.Link(route.LinkIndex)?.Name ?? $"#{route.LinkIndex}";
            stale.Add($"route {route.Destination}{(route.Gateway is { } gw ? $" via {gw}" : string.Empty)} dev {dev}: no lease holds {route.Destination}");
            staleFix.Add(Command("ip", "route", "del", route.Destination.ToString(), "dev", dev));
        }

        if (vxlan)
        {
            var leasedMacs = remote.Select(DoctorLeases.VtepMacOf).OfType<MacAddress>().ToHashSet();
            var overlayAddresses = remote.Where(l => l.Subnet is not null).Select(l => l.Subnet!.Value.BaseAddress).ToHashSet();
            foreach (NeighborInfo neighbor in facts.Kernel.Neighbors.GetValueOrDefault(device!.Index, []).Where(n => n.IsPermanent))
            {
                if (!overlayAddresses.Contains(neighbor.Address))
                {
                    stale.Add($"neighbour {neighbor.Address} lladdr {neighbor.LinkLayerAddress} on {device.Name}: no lease has this overlay address");
                    staleFix.Add(Command("ip", "neigh", "del", neighbor.Address.ToString(), "dev", device.Name));
                }
            }

            foreach (FdbEntryInfo entry in facts.Kernel.Fdb.GetValueOrDefault(device.Index, []).Where(f => f.IsPermanent && f.Destination is not null))
            {
                if (!leasedMacs.Contains(entry.MacAddress) && entry.MacAddress != MacAddress.Zero)
                {
                    stale.Add($"FDB entry {entry.MacAddress} dst {entry.Destination} on {device.Name}: no lease has this VtepMAC");
                    staleFix.Add(Command("bridge", "fdb", "del", entry.MacAddress.ToString(), "dev", device.Name, "dst", entry.Destination!.ToString()));
                }
            }
        }

        if (stale.Count > 0)
        {
            findings.Add(new DoctorFinding(KernelObjects, FindingSeverity.Warning,
                $"{stale.Count} kernel object{(stale.Count == 1 ? string.Empty : "s")} for peers that have no lease any more: traffic to those subnets goes to a node that is gone",
                stale,
                ["flanneld deletes these at its next full reconciliation; to remove them now:", .. staleFix]));
        }

        if (findings.Count == 0)
        {
            findings.Add(DoctorFinding.Pass(KernelObjects, $"every one of the {remote.Length} peers has its route{(vxlan ? ", neighbour and FDB entry" : string.Empty)}, and nothing is left for peers without a lease"));
        }

        return findings;
    }

    private static bool Contains(IPNetwork network, IPNetwork subnet) =>
        subnet.PrefixLength >= network.PrefixLength && network.Contains(subnet.BaseAddress);

    // ------------------------------------------------------------------ helpers

    /// <summary>A command line for display: arguments that need it are quoted, nothing is ever run from it.</summary>
    internal static string Command(params string[] argv) =>
        string.Join(' ', argv.Select(a => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,@%+".Contains(c, StringComparison.Ordinal)) ? a : $"'{a.Replace("'", "'\\''", StringComparison.Ordinal)}'"));

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Show(int? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "(absent)";

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
