using System.Net;
using Flannel.Agent.Doctor;
using Flannel.Netlink;
using Flannel.SubnetEnv;
using Flannel.Subnets;

namespace Flannel.Agent.Tests.Doctor;

/// <summary>
/// The wireguard doctor checks against facts as a healthy node 1 of a 3-node wireguard cluster shows them (eth0
/// 198.18.0.11 MTU 1500, flannel-wg 10.244.1.0 MTU 1420 on UDP 51820, one peer per remote lease in
/// <c>wg show flannel-wg dump</c>), then with one thing broken.
/// </summary>
public sealed class WireGuardChecksTests
{
    private const string Key1 = "x0ZzfFNOr5NXBMUCBUEhaLbE9r1mj8M8oyHIFiXlYnk=";
    private const string Key2 = "Q3oRNFWSGGZBxYx9uE7Mv3kCu0Ug3d0x2m5oGbF9xXU=";
    private const string Key3 = "hYk9oVJfE2bVxmRYeWqR8z2zjV9Cm8N4J9F9dGq3yGE=";
    private const string Stranger = "ZmFrZS1rZXktb2YtYS1ub2RlLXRoYXQtaXMtZ29uZSE=";

    private static Lease WireGuardLease(int n, string key, int port = 51820) => new()
    {
        Subnet = IPNetwork.Parse($"10.244.{n}.0/24"),
        Attributes = new LeaseAttributes
        {
            PublicIP = IPAddress.Parse($"198.18.0.{10 + n}"),
            BackendType = "wireguard",
            BackendData = $"{{\"PublicKey\":\"{key}\",\"Port\":{port}}}",
        },
    };

    private static string PeerLine(string key, int n) => $"{key}\t(none)\t198.18.0.{10 + n}:51820\t10.244.{n}.0/24\t0\t0\t0\toff";

    private static string Dump(int listenPort = 51820, params string[] peers) =>
        string.Join('\n', [$"cHJpdmF0ZS1rZXktbm90LXNob3duLWluLWEtdGVzdCE=\t{Key1}\t{listenPort}\toff", .. peers]) + "\n";

    private static readonly string HealthyDump = Dump(51820, PeerLine(Key2, 2), PeerLine(Key3, 3));

    private static KernelFacts Kernel(int deviceMtu = 1420, bool up = true, bool device = true) => new()
    {
        Links =
        [
            new LinkInfo { Index = 2, Name = "eth0", Mtu = 1500, IsUp = true, Kind = "veth" },
            .. device ? [new LinkInfo { Index = 4, Name = "flannel-wg", Mtu = deviceMtu, IsUp = up, Kind = "tun" }] : Array.Empty<LinkInfo>(),
        ],
        Addresses =
        [
            new AddressInfo { LinkIndex = 2, Address = IPNetwork.Parse("198.18.0.0/24"), Local = IPAddress.Parse("198.18.0.11") },
            .. device ? [new AddressInfo { LinkIndex = 4, Address = IPNetwork.Parse("10.244.1.0/32"), Local = IPAddress.Parse("10.244.1.0") }] : Array.Empty<AddressInfo>(),
        ],
        Routes = [],
        Neighbors = new Dictionary<int, IReadOnlyList<NeighborInfo>>(),
        Fdb = new Dictionary<int, IReadOnlyList<FdbEntryInfo>>(),
    };

    private static DoctorFacts Facts(KernelFacts? kernel = null, string? dump = null, IReadOnlyList<Lease>? leases = null, string mtu = "1420")
    {
        IReadOnlyList<Lease> all = leases ?? [WireGuardLease(1, Key1), WireGuardLease(2, Key2), WireGuardLease(3, Key3)];
        return new DoctorFacts
        {
            Leases = new DoctorLeases { Source = "test", NodeName = "node1", Network = IPNetwork.Parse("10.244.0.0/16"), BackendType = "wireguard", OwnLease = all[0], Leases = all },
            Kernel = kernel ?? Kernel(),
            Firewall = new FirewallFacts(),
            SubnetEnv = SubnetEnvFile.Parse($"FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ=true\n"),
            SubnetFile = "/run/flannel/subnet.env",
            Sysctl = _ => null,
            WireGuardDumps = new Dictionary<string, string?> { ["flannel-wg"] = dump ?? HealthyDump },
        };
    }

    private static DoctorFinding[] Problems(DoctorFacts facts) => [.. WireGuardChecks.Findings(facts).Where(f => f.Severity > FindingSeverity.Info)];

    [Fact]
    public void A_healthy_wireguard_node_passes_with_device_mtu_port_and_peers_checked()
    {
        DoctorFinding[] findings = [.. WireGuardChecks.Findings(Facts())];

        Assert.DoesNotContain(findings, f => f.Severity > FindingSeverity.Info);
        Assert.Contains(findings, f => f.Summary == "flannel-wg is up, MTU 1420 = underlay - 80; subnet.env FLANNEL_MTU=1420");
        Assert.Contains(findings, f => f.Summary == "flannel-wg listens on UDP 51820, the port its lease publishes");
        Assert.Contains(findings, f => f.Summary == "flannel-wg has exactly one peer per remote wireguard lease (2)");
        Assert.Contains(DoctorChecks.All(Facts()), f => f.Check == WireGuardChecks.Check);
    }

    [Fact]
    public void Other_backends_get_no_wireguard_findings()
    {
        DoctorFacts vxlan = Facts(Kernel(device: false)) with { Leases = Facts().Leases with { BackendType = "vxlan" } };
        Assert.Empty(WireGuardChecks.Findings(vxlan));
    }

    [Fact]
    public void A_missing_or_down_device_is_an_error_with_the_fix()
    {
        DoctorFinding missing = Assert.Single(Problems(Facts(Kernel(device: false))));
        Assert.Equal(FindingSeverity.Error, missing.Severity);
        Assert.Equal("flannel-wg does not exist: no pod traffic leaves this node over WireGuard", missing.Summary);
        Assert.Contains("restart flanneld", missing.Fix[0], StringComparison.Ordinal);

        DoctorFinding down = Assert.Single(Problems(Facts(Kernel(up: false))));
        Assert.Equal("flannel-wg is down", down.Summary);
        Assert.Equal(["ip link set dev flannel-wg up"], down.Fix);
    }

    [Fact]
    public void A_device_mtu_above_underlay_less_80_and_a_stale_subnet_env_are_named()
    {
        DoctorFinding[] problems = Problems(Facts(Kernel(deviceMtu: 1500), mtu: "1420"));

        DoctorFinding device = Assert.Single(problems, f => f.Summary.StartsWith("flannel-wg MTU is 1500, not 1420", StringComparison.Ordinal));
        Assert.Equal(FindingSeverity.Error, device.Severity);
        Assert.Equal(["ip link set dev flannel-wg mtu 1420"], device.Fix);
        Assert.Contains("ip link: eth0 mtu 1500 (WireGuard adds up to 80 bytes)", device.Evidence);
        Assert.Single(problems, f => f.Summary == "subnet.env FLANNEL_MTU=1420 differs from 1500, flannel-wg's MTU: pods are created with the wrong MTU");
    }

    [Fact]
    public void A_peer_without_a_lease_and_a_lease_without_a_peer_each_get_the_wg_command_that_fixes_them()
    {
        DoctorFinding[] problems = Problems(Facts(dump: Dump(51820, PeerLine(Key2, 2), PeerLine(Stranger, 9))));

        DoctorFinding stranger = Assert.Single(problems, f => f.Severity == FindingSeverity.Warning);
        Assert.Equal($"flannel-wg has peer {Stranger} that no lease publishes: traffic for 10.244.9.0/24 goes to 198.18.0.19:51820", stranger.Summary);
        Assert.Equal([$"wg set flannel-wg peer {Stranger} remove"], stranger.Fix);

        DoctorFinding missing = Assert.Single(problems, f => f.Severity == FindingSeverity.Error);
        Assert.Equal("lease 10.244.3.0-24 has no peer on flannel-wg: pods on this node cannot reach 10.244.3.0/24", missing.Summary);
        Assert.Contains($"wg set flannel-wg peer {Key3} endpoint 198.18.0.13:51820 allowed-ips 10.244.3.0/24", missing.Fix);
        Assert.Contains($"wg show flannel-wg dump: no peer {Key3}", missing.Evidence);
    }

    [Fact]
    public void A_listen_port_other_than_the_published_one_is_an_error()
    {
        DoctorFinding port = Assert.Single(Problems(Facts(dump: Dump(51999, PeerLine(Key2, 2), PeerLine(Key3, 3)))));
        Assert.Equal("flannel-wg listens on UDP 51999 but this node's lease tells peers to send to 51820", port.Summary);
        Assert.Equal(["wg set flannel-wg listen-port 51820"], port.Fix);
    }

    [Fact]
    public void Peers_that_wg_cannot_read_are_a_warning_not_a_guess()
    {
        DoctorFacts facts = Facts() with { WireGuardDumps = new Dictionary<string, string?> { ["flannel-wg"] = null } };
        DoctorFinding unreadable = Assert.Single(Problems(facts));
        Assert.Equal(FindingSeverity.Warning, unreadable.Severity);
        Assert.Equal("cannot read flannel-wg's peers with `wg show flannel-wg dump`", unreadable.Summary);
        Assert.Null(WireGuardDump.Parse("not a dump"));
    }
}
