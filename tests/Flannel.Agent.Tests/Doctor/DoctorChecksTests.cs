using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Flannel.Agent.Doctor;
using Flannel.Agent.Probing;
using Flannel.Netlink;
using Flannel.Networking;
using Flannel.SubnetEnv;
using Flannel.Subnets;

namespace Flannel.Agent.Tests.Doctor;

/// <summary>
/// Each doctor check against facts as a healthy node 1 of a 3-node vxlan cluster shows them (eth0 198.18.0.11 MTU
/// 1500, flannel.1 10.244.1.0 MTU 1450, peers 10.244.2.0/24 and 10.244.3.0/24), then with one thing broken.
/// </summary>
public sealed class DoctorChecksTests
{
    private static readonly MacAddress Mac1 = MacAddress.Parse("0e:00:00:00:00:01");
    private static readonly MacAddress Mac2 = MacAddress.Parse("0e:00:00:00:00:02");
    private static readonly MacAddress Mac3 = MacAddress.Parse("0e:00:00:00:00:03");

    private static Lease VxlanLease(int n, MacAddress mac, string? publicIP = null) => new()
    {
        Subnet = IPNetwork.Parse($"10.244.{n}.0/24"),
        Expiration = new DateTimeOffset(2025, 1, 2, 0, 0, n, TimeSpan.Zero),
        Attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse(publicIP ?? $"198.18.0.{10 + n}"),
            BackendType = "vxlan",
            BackendData = $"{{\"VNI\":1,\"VtepMAC\":\"{mac}\"}}",
        },
    };

    private static readonly LinkInfo Eth0 = new() { Index = 2, Name = "eth0", Mtu = 1500, IsUp = true, Kind = "veth" };

    private static LinkInfo Flannel1(int mtu = 1450) => new()
    {
        Index = 3,
        Name = "flannel.1",
        Mtu = mtu,
        IsUp = true,
        Kind = "vxlan",
        Address = Mac1,
        Vxlan = new VxlanInfo { Vni = 1, Local = IPAddress.Parse("198.18.0.11"), UnderlayIndex = 2, Port = 8472 },
    };

    private static RouteInfo PeerRoute(int n) => new()
    {
        Destination = IPNetwork.Parse($"10.244.{n}.0/24"),
        Gateway = IPAddress.Parse($"10.244.{n}.0"),
        LinkIndex = 3,
        OnLink = true,
        Table = RouteDefaults.MainTable,
        Protocol = RouteDefaults.ProtocolFlannel,
        Type = RouteType.Unicast,
    };

    private static KernelFacts HealthyKernel(int deviceMtu = 1450, int underlayMtu = 1500) => new()
    {
        Links = [Eth0 with { Mtu = underlayMtu }, Flannel1(deviceMtu)],
        Addresses =
        [
            new AddressInfo { LinkIndex = 2, Address = IPNetwork.Parse("198.18.0.0/24"), Local = IPAddress.Parse("198.18.0.11") },
            new AddressInfo { LinkIndex = 3, Address = IPNetwork.Parse("10.244.1.0/32"), Local = IPAddress.Parse("10.244.1.0") },
        ],
        Routes = [PeerRoute(2), PeerRoute(3)],
        Neighbors = new Dictionary<int, IReadOnlyList<NeighborInfo>>
        {
            [3] =
            [
                new NeighborInfo { LinkIndex = 3, Address = IPAddress.Parse("10.244.2.0"), LinkLayerAddress = Mac2, State = NeighborState.Permanent },
                new NeighborInfo { LinkIndex = 3, Address = IPAddress.Parse("10.244.3.0"), LinkLayerAddress = Mac3, State = NeighborState.Permanent },
            ],
        },
        Fdb = new Dictionary<int, IReadOnlyList<FdbEntryInfo>>
        {
            [3] =
            [
                new FdbEntryInfo { LinkIndex = 3, MacAddress = Mac2, Destination = IPAddress.Parse("198.18.0.12"), State = NeighborState.Permanent },
                new FdbEntryInfo { LinkIndex = 3, MacAddress = Mac3, Destination = IPAddress.Parse("198.18.0.13"), State = NeighborState.Permanent },
            ],
        },
    };

    private static readonly FirewallFacts FlannelRules = new()
    {
        IptablesForward = "-P FORWARD DROP\n-A FORWARD -m comment --comment \"flanneld forward\" -j FLANNEL-FWD\n",
        IptablesFlannelForward = "-N FLANNEL-FWD\n-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment \"flanneld forward\" -j ACCEPT\n",
        IptablesMasquerade = true,
        NftRuleset = string.Empty,
    };

    private static DoctorFacts Healthy(KernelFacts? kernel = null, FirewallFacts? firewall = null, IReadOnlyList<Lease>? leases = null, string? subnetEnv = null, Dictionary<string, string>? sysctls = null)
    {
        var values = sysctls ?? new Dictionary<string, string>
        {
            ["net/bridge/bridge-nf-call-iptables"] = "1",
            ["net/ipv4/conf/all/rp_filter"] = "0",
            ["net/ipv4/conf/flannel.1/rp_filter"] = "2",
        };
        return new DoctorFacts
        {
            Leases = new DoctorLeases
            {
                Source = "test",
                NodeName = "node1",
                Network = IPNetwork.Parse("10.244.0.0/16"),
                BackendType = "vxlan",
                Leases = leases ?? [VxlanLease(1, Mac1), VxlanLease(2, Mac2), VxlanLease(3, Mac3)],
                DeleteLeaseCommand = key => $"etcdctl del /coreos.com/network/subnets/{key}",
            },
            Kernel = kernel ?? HealthyKernel(),
            Firewall = firewall ?? FlannelRules,
            SubnetEnv = SubnetEnvFile.Parse(subnetEnv ?? "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"),
            SubnetFile = "/run/flannel/subnet.env",
            Sysctl = path => values.GetValueOrDefault(path),
        };
    }

    private static DoctorFinding[] Problems(IEnumerable<DoctorFinding> findings) => [.. findings.Where(f => f.Severity > FindingSeverity.Info)];

    [Fact]
    public void A_healthy_node_passes_every_offline_check()
    {
        DoctorFinding[] findings = [.. DoctorChecks.All(Healthy())];
        Assert.Empty(Problems(findings));
        Assert.Equal(
            [DoctorChecks.Mtu, DoctorChecks.BrNetfilter, DoctorChecks.ForwardPolicy, DoctorChecks.RpFilter, DoctorChecks.DuplicateLeases, DoctorChecks.SubnetEnv, DoctorChecks.KernelObjects],
            findings.Select(f => f.Check).Distinct());
        Assert.Contains(findings, f => f.Summary == "flannel.1 MTU 1450 = eth0 MTU 1500 - 50; subnet.env FLANNEL_MTU=1450");
    }

    [Fact]
    public void Mtu_changed_by_hand_on_the_device_is_named_with_the_command_that_restores_it()
    {
        DoctorFinding[] problems = Problems(DoctorChecks.MtuFindings(Healthy(HealthyKernel(deviceMtu: 1400))));
        // One finding: subnet.env and the underlay agree, so the device is the odd one out.
        DoctorFinding device = Assert.Single(problems);
        Assert.StartsWith("flannel.1 MTU is 1400, not 1450 as flannel sets it from eth0's MTU 1500", device.Summary, StringComparison.Ordinal);
        Assert.Equal(FindingSeverity.Error, device.Severity);
        Assert.Equal(["ip link set dev flannel.1 mtu 1450"], device.Fix);
        Assert.Contains("ip link: eth0 mtu 1500 (the vxlan device's underlay; VXLAN over IPv4 adds 50 bytes)", device.Evidence);
        Assert.Contains("/run/flannel/subnet.env: FLANNEL_MTU=1450", device.Evidence);

        // subnet.env out of step with a device that is right: the file is the odd one out.
        DoctorFinding file = Assert.Single(Problems(DoctorChecks.MtuFindings(Healthy(subnetEnv: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n"))));
        Assert.StartsWith("subnet.env FLANNEL_MTU=1500 differs from 1450, flannel.1's MTU", file.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Dual_stack_subnet_env_carries_the_smaller_device_mtu_and_only_a_larger_one_is_an_error()
    {
        static KernelFacts DualStack()
        {
            KernelFacts kernel = HealthyKernel();
            LinkInfo v6 = new()
            {
                Index = 4,
                Name = "flannel-v6.1",
                Mtu = 1430,
                IsUp = true,
                Kind = "vxlan",
                Address = Mac2,
                Vxlan = new VxlanInfo { Vni = 1, Local = IPAddress.Parse("fd00:198:18::11"), UnderlayIndex = 2, Port = 8472 },
            };
            return kernel with { Links = [.. kernel.Links, v6] };
        }

        const string Env = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU={0}\nFLANNEL_IPMASQ=true\n";
        Assert.Empty(Problems(DoctorChecks.MtuFindings(Healthy(DualStack(), subnetEnv: string.Format(CultureInfo.InvariantCulture, Env, 1430)))));

        // 1450 fits flannel.1 but not flannel-v6.1: pods would send packets too large for the IPv6 overlay.
        DoctorFinding file = Assert.Single(Problems(DoctorChecks.MtuFindings(Healthy(DualStack(), subnetEnv: string.Format(CultureInfo.InvariantCulture, Env, 1450)))));
        Assert.StartsWith("subnet.env FLANNEL_MTU=1450 differs from 1430, flannel-v6.1's MTU, the smaller of the flannel devices'", file.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void An_underlay_mtu_too_small_for_the_encapsulation_is_an_error()
    {
        DoctorFinding problem = Assert.Single(Problems(DoctorChecks.MtuFindings(Healthy(HealthyKernel(underlayMtu: 1400)))));
        Assert.StartsWith("flannel.1 MTU 1450 plus 50 bytes of VXLAN encapsulation exceeds eth0's MTU 1400", problem.Summary, StringComparison.Ordinal);
        Assert.Equal("ip link set dev flannel.1 mtu 1350", problem.Fix[0]);
    }

    [Fact]
    public void A_cni_bridge_with_a_larger_mtu_than_the_overlay_is_a_warning()
    {
        KernelFacts kernel = HealthyKernel();
        kernel = kernel with { Links = [.. kernel.Links, new LinkInfo { Index = 9, Name = "cni0", Mtu = 1500, Kind = "bridge" }] };
        DoctorFinding warning = Assert.Single(Problems(DoctorChecks.MtuFindings(Healthy(kernel))));
        Assert.Equal(FindingSeverity.Warning, warning.Severity);
        Assert.StartsWith("cni0's MTU 1500 is larger than flannel.1's 1450", warning.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Masquerading_with_iptables_without_br_netfilter_is_a_warning_with_modprobe()
    {
        DoctorFinding missing = Assert.Single(DoctorChecks.BrNetfilterFindings(Healthy(sysctls: [])));
        Assert.Equal(FindingSeverity.Warning, missing.Severity);
        Assert.Contains("br_netfilter is not loaded", missing.Summary, StringComparison.Ordinal);
        Assert.Equal(["modprobe br_netfilter", "sysctl -w net.bridge.bridge-nf-call-iptables=1"], missing.Fix.Take(2));

        DoctorFinding off = Assert.Single(DoctorChecks.BrNetfilterFindings(Healthy(sysctls: new() { ["net/bridge/bridge-nf-call-iptables"] = "0" })));
        Assert.Equal(FindingSeverity.Warning, off.Severity);

        DoctorFinding notMasquerading = Assert.Single(DoctorChecks.BrNetfilterFindings(Healthy(
            firewall: FlannelRules with { IptablesMasquerade = false }, sysctls: [], subnetEnv: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n")));
        Assert.Equal(FindingSeverity.Ok, notMasquerading.Severity);
    }

    [Fact]
    public void Forward_policy_drop_without_flannels_rules_is_an_error()
    {
        DoctorFinding dropped = Assert.Single(DoctorChecks.ForwardPolicyFindings(Healthy(firewall: new FirewallFacts { IptablesForward = "-P FORWARD DROP\n" })));
        Assert.Equal(FindingSeverity.Error, dropped.Severity);
        Assert.Contains("nothing accepts the pod network 10.244.0.0/16", dropped.Summary, StringComparison.Ordinal);
        Assert.Contains("chain FLANNEL-FWD does not exist", dropped.Evidence);
        Assert.Contains("iptables -A FORWARD -s 10.244.0.0/16 -j ACCEPT", dropped.Fix);

        // The chain exists but nothing jumps to it (someone flushed FORWARD).
        DoctorFinding unreferenced = Assert.Single(DoctorChecks.ForwardPolicyFindings(Healthy(firewall: FlannelRules with { IptablesForward = "-P FORWARD DROP\n" })));
        Assert.Equal(FindingSeverity.Error, unreferenced.Severity);

        Assert.Equal(FindingSeverity.Ok, Assert.Single(DoctorChecks.ForwardPolicyFindings(Healthy())).Severity);
        Assert.Equal(FindingSeverity.Ok, Assert.Single(DoctorChecks.ForwardPolicyFindings(Healthy(firewall: new FirewallFacts { IptablesForward = "-P FORWARD ACCEPT\n" }))).Severity);
    }

    [Fact]
    public void An_nftables_base_chain_dropping_forwarded_traffic_is_an_error_even_with_flannels_rules()
    {
        const string ruleset = """
            table inet filter {
            	chain forward {
            		type filter hook forward priority filter; policy drop;
            		ct state established,related accept
            	}
            }
            table ip flannel-ipv4 {
            	chain forward {
            		type filter hook forward priority filter; policy accept;
            		ip saddr 10.244.0.0/16 accept
            	}
            }
            """;
        DoctorFinding[] findings = [.. DoctorChecks.ForwardPolicyFindings(Healthy(firewall: FlannelRules with { NftRuleset = ruleset }))];
        DoctorFinding nft = Assert.Single(Problems(findings));
        Assert.Contains("nftables chain forward in table inet filter drops forwarded traffic", nft.Summary, StringComparison.Ordinal);
        Assert.Equal("nft insert rule inet filter forward ip saddr 10.244.0.0/16 accept", nft.Fix[0]);
    }

    [Fact]
    public void Strict_rp_filter_on_the_flannel_device_names_the_sysctl_with_slashes()
    {
        DoctorFinding strict = Assert.Single(DoctorChecks.RpFilterFindings(Healthy(sysctls: new() { ["net/ipv4/conf/all/rp_filter"] = "1", ["net/ipv4/conf/flannel.1/rp_filter"] = "0" })));
        Assert.Equal(FindingSeverity.Warning, strict.Severity);
        Assert.Contains("net.ipv4.conf.flannel/1.rp_filter = 0", strict.Evidence);
        Assert.Contains("effective: 1 (strict)", strict.Evidence);
        Assert.Equal("sysctl -w net.ipv4.conf.flannel/1.rp_filter=2", strict.Fix[0]);
        Assert.StartsWith("sysctl -w net.ipv4.conf.all.rp_filter=2", strict.Fix[1], StringComparison.Ordinal);

        Assert.Equal(FindingSeverity.Ok, Assert.Single(DoctorChecks.RpFilterFindings(Healthy())).Severity);
    }

    [Fact]
    public void Duplicate_vtep_macs_and_public_ips_are_errors_naming_the_leases()
    {
        Lease[] leases = [VxlanLease(1, Mac1), VxlanLease(2, Mac2), VxlanLease(3, Mac2), VxlanLease(4, Mac3, publicIP: "198.18.0.12")];
        DoctorFinding[] findings = [.. DoctorChecks.DuplicateLeaseFindings(Healthy(leases: leases))];
        Assert.Equal(2, findings.Length);
        Assert.All(findings, f => Assert.Equal(FindingSeverity.Error, f.Severity));
        Assert.StartsWith("2 leases publish VtepMAC 0e:00:00:00:00:02", findings[0].Summary, StringComparison.Ordinal);
        Assert.Contains(findings[0].Evidence, e => e.StartsWith("lease 10.244.3.0-24: PublicIP 198.18.0.13", StringComparison.Ordinal));
        Assert.StartsWith("2 leases have PublicIP 198.18.0.12", findings[1].Summary, StringComparison.Ordinal);
        Assert.Contains("etcdctl del /coreos.com/network/subnets/10.244.2.0-24   (if that node no longer exists)", findings[1].Fix);
    }

    [Fact]
    public void A_subnet_env_from_another_lease_or_missing_is_an_error()
    {
        DoctorFinding stale = Assert.Single(DoctorChecks.SubnetEnvFindings(Healthy(subnetEnv: "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")));
        Assert.Equal(FindingSeverity.Error, stale.Severity);
        Assert.Contains("FLANNEL_SUBNET is in 10.244.7.0/24 but this node's lease is 10.244.1.0/24 (10.244.1.0-24): new pods get addresses the other nodes route elsewhere", stale.Evidence);

        DoctorFacts missing = Healthy() with { SubnetEnv = SubnetEnvReadResult.Missing("/run/flannel/subnet.env") };
        Assert.Contains("does not exist", Assert.Single(DoctorChecks.SubnetEnvFindings(missing)).Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_objects_for_a_leased_peer_are_errors_and_objects_without_a_lease_are_listed_with_delete_commands()
    {
        KernelFacts kernel = HealthyKernel();
        kernel = kernel with
        {
            Fdb = new Dictionary<int, IReadOnlyList<FdbEntryInfo>>
            {
                [3] =
                [
                    new FdbEntryInfo { LinkIndex = 3, MacAddress = Mac2, Destination = IPAddress.Parse("198.18.0.12"), State = NeighborState.Permanent },
                    new FdbEntryInfo { LinkIndex = 3, MacAddress = MacAddress.Parse("0e:00:00:00:00:09"), Destination = IPAddress.Parse("198.18.0.19"), State = NeighborState.Permanent },
                ],
            },
            Routes = [.. kernel.Routes, PeerRoute(9)],
            Neighbors = new Dictionary<int, IReadOnlyList<NeighborInfo>> { [3] = [.. kernel.Neighbors[3], new NeighborInfo { LinkIndex = 3, Address = IPAddress.Parse("10.244.9.0"), LinkLayerAddress = MacAddress.Parse("0e:00:00:00:00:09"), State = NeighborState.Permanent }] },
        };

        DoctorFinding[] findings = [.. DoctorChecks.KernelObjectFindings(Healthy(kernel))];
        DoctorFinding missing = Assert.Single(findings, f => f.Severity == FindingSeverity.Error);
        Assert.StartsWith("peer 10.244.3.0-24 (public IP 198.18.0.13)", missing.Summary, StringComparison.Ordinal);
        Assert.Equal(["no FDB entry 0e:00:00:00:00:03 dst 198.18.0.13 on flannel.1"], missing.Evidence);

        DoctorFinding stale = Assert.Single(findings, f => f.Severity == FindingSeverity.Warning);
        Assert.StartsWith("3 kernel objects for peers that have no lease any more", stale.Summary, StringComparison.Ordinal);
        Assert.Contains("ip route del 10.244.9.0/24 dev flannel.1", stale.Fix);
        Assert.Contains("ip neigh del 10.244.9.0 dev flannel.1", stale.Fix);
        Assert.Contains("bridge fdb del 0e:00:00:00:00:09 dev flannel.1 dst 198.18.0.19", stale.Fix);
    }

    [Theory]
    [InlineData("wireguard")]
    [InlineData("alloc")]
    [InlineData("extension")]
    public void Backends_without_per_peer_routes_are_not_judged_by_their_routes(string backendType)
    {
        // A wireguard node has one route to the whole network through flannel-wg and none per peer.
        DoctorFacts facts = Healthy(HealthyKernel() with { Routes = [] });
        facts = facts with { Leases = facts.Leases with { BackendType = backendType } };

        DoctorFinding finding = Assert.Single(DoctorChecks.KernelObjectFindings(facts));
        Assert.Equal(FindingSeverity.Info, finding.Severity);
        Assert.Contains($"the {backendType} backend programs no per-peer routes", finding.Summary, StringComparison.Ordinal);

        // The same kernel under vxlan is an error for every peer: the check still bites where it applies.
        Assert.Equal(2, DoctorChecks.KernelObjectFindings(Healthy(HealthyKernel() with { Routes = [] })).Count(f => f.Severity == FindingSeverity.Error));
    }

    [Fact]
    public async Task The_vxlan_port_check_tells_a_filtered_port_from_a_closed_one_and_names_the_pair()
    {
        var echo = new ScriptedEcho();
        echo.Results[IPAddress.Parse("10.244.2.0")] = EchoResult.TimedOut;                       // overlay to node 2 broken
        echo.Results[IPAddress.Parse("10.244.3.0")] = EchoResult.TimedOut;                       // overlay to node 3 broken
        var udp = new ScriptedUdp();
        udp.Results[IPAddress.Parse("198.18.0.13")] = (UdpProbeOutcome.PortUnreachable, "ICMP port unreachable (ECONNREFUSED)");

        IReadOnlyList<DoctorFinding> findings = await VxlanPortCheck.RunAsync(Healthy(), echo, udp, sampleSize: 8, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);

        DoctorFinding filtered = Assert.Single(findings, f => f.Summary.Contains("appears filtered", StringComparison.Ordinal));
        Assert.Equal("UDP 8472 between 198.18.0.11 and 198.18.0.12 (lease 10.244.2.0-24) appears filtered: the underlay answers ICMP, the overlay does not, and no ICMP port-unreachable came back", filtered.Summary);
        Assert.Contains("ICMP 10.244.1.0 -> 10.244.2.0 over flannel.1: no reply", filtered.Evidence);
        Assert.Contains("iptables -I INPUT -p udp --dport 8472 -s 198.18.0.12 -j ACCEPT   (on 198.18.0.11)", filtered.Fix);
        DoctorFinding closed = Assert.Single(findings, f => f.Summary.StartsWith("nothing listens on UDP 8472 at 198.18.0.13", StringComparison.Ordinal));
        Assert.Equal(FindingSeverity.Error, closed.Severity);
        Assert.Contains((IPAddress.Parse("10.244.2.0"), (IPAddress?)IPAddress.Parse("10.244.1.0")), echo.Sent);
        Assert.Contains((IPAddress.Parse("198.18.0.12"), (IPAddress?)IPAddress.Parse("198.18.0.11")), echo.Sent);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("198.18.0.12"), 8472), udp.Sent[0]);

        IReadOnlyList<DoctorFinding> healthy = await VxlanPortCheck.RunAsync(Healthy(), new ScriptedEcho(), new ScriptedUdp(), 8, TimeSpan.FromSeconds(1), TestContext.Current.CancellationToken);
        Assert.Equal("UDP 8472 works to all 2 peers: each answered over the overlay", Assert.Single(healthy).Summary);
    }

    [Fact]
    public void Fix_commands_quote_what_a_shell_would_split()
    {
        Assert.Equal("ip link set dev flannel.1 mtu 1450", DoctorChecks.Command("ip", "link", "set", "dev", "flannel.1", "mtu", "1450"));
        Assert.Equal("echo 'a b' 'it'\\''s' '$(x)'", DoctorChecks.Command("echo", "a b", "it's", "$(x)"));
    }

    [Fact]
    public void The_report_text_lists_errors_first_with_evidence_and_fix()
    {
        var report = new DoctorReport
        {
            Node = "node1",
            LeaseSource = "test",
            Findings =
            [
                new DoctorFinding("mtu", FindingSeverity.Error, "flannel.1 MTU is 1400", ["ip link: flannel.1 mtu 1400"], ["ip link set dev flannel.1 mtu 1450"]),
                DoctorFinding.Pass("rp-filter", "flannel.1: rp_filter 2 (loose)"),
            ],
        };
        string text = report.ToText();
        Assert.Contains("ERROR mtu               flannel.1 MTU is 1400\n", text, StringComparison.Ordinal);
        Assert.Contains("evidence: ip link: flannel.1 mtu 1400\n", text, StringComparison.Ordinal);
        Assert.Contains("fix:      ip link set dev flannel.1 mtu 1450\n", text, StringComparison.Ordinal);
        Assert.EndsWith("1 error, 0 warnings, 0 notes, 1 passed\n", text, StringComparison.Ordinal);
        Assert.Equal(1, report.ExitCode);
    }

    private sealed class ScriptedEcho : IEchoProber
    {
        public Dictionary<IPAddress, EchoResult> Results { get; } = [];

        public List<(IPAddress, IPAddress?)> Sent { get; } = [];

        public ValueTask<EchoResult> EchoAsync(IPAddress destination, IPAddress? source, TimeSpan timeout, CancellationToken cancellationToken)
        {
            lock (Sent)
            {
                Sent.Add((destination, source));
            }

            return ValueTask.FromResult(Results.TryGetValue(destination, out EchoResult r) ? r : EchoResult.Reply(TimeSpan.FromMilliseconds(0.2)));
        }
    }

    private sealed class ScriptedUdp : IUdpPortProbe
    {
        public Dictionary<IPAddress, (UdpProbeOutcome, string)> Results { get; } = [];

        public List<IPEndPoint> Sent { get; } = [];

        public Task<(UdpProbeOutcome Outcome, string Detail)> ProbeAsync(IPAddress? source, IPEndPoint destination, uint vni, TimeSpan timeout, CancellationToken cancellationToken)
        {
            lock (Sent)
            {
                Sent.Add(destination);
                Sent.Sort((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()));
            }

            return Task.FromResult(Results.TryGetValue(destination.Address, out (UdpProbeOutcome, string) r) ? r : (UdpProbeOutcome.NoAnswer, "no ICMP error within 1 s"));
        }
    }
}
