using System.Globalization;
using System.Net;
using System.Text;
using Flannel.Netlink;

namespace Flannel.Benchmarks.Kernel;

/// <summary>One remote flannel host: its pod subnet, its VTEP MAC and its underlay address.</summary>
/// <param name="Index">0-based position; the nexthop object id is <c>Index + 1</c>.</param>
/// <param name="Subnet">The peer's /24, e.g. 10.0.1.0/24.</param>
/// <param name="Gateway">The subnet's network address, flannel's onlink gateway (and the ARP entry's IP).</param>
/// <param name="VtepMac">The peer's flannel.1 MAC (ARP lladdr and FDB key).</param>
/// <param name="Underlay">The peer's underlay address (FDB dst), inside 198.18.0.0/15.</param>
internal sealed record Peer(int Index, IPNetwork Subnet, IPAddress Gateway, MacAddress VtepMac, IPAddress Underlay)
{
    public uint NexthopId => (uint)Index + 1;
}

/// <summary>
/// N distinct peers, generated deterministically so every tool programs byte-for-byte the same objects:
/// peer i gets subnet 10.a.b.0/24 with (a, b) = (i + 1) split into two bytes (10.0.1.0/24, 10.0.2.0/24, ...
/// up to 65,535 peers), VTEP MAC 02:fb:00:xx:xx:xx (locally administered, unicast) carrying i, and underlay
/// address 198.19.x.y carrying i (inside the benchmark underlay 198.18.0.0/15, outside veth0's 198.18.0.1).
/// </summary>
internal sealed class PeerSet
{
    public const int MaxPeers = 65_535;

    private PeerSet(Peer[] peers) => Peers = peers;

    public IReadOnlyList<Peer> Peers { get; }

    public int Count => Peers.Count;

    public static PeerSet Generate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxPeers);
        var peers = new Peer[count];
        for (int i = 0; i < count; i++)
        {
            int subnet = i + 1;
            var gateway = new IPAddress(new byte[] { 10, (byte)(subnet >> 8), (byte)subnet, 0 });
            var mac = new MacAddress(new byte[] { 0x02, 0xfb, 0x00, (byte)(i >> 16), (byte)(i >> 8), (byte)i });
            var underlay = new IPAddress(new byte[] { 198, 19, (byte)(i >> 8), (byte)i });
            peers[i] = new Peer(i, new IPNetwork(gateway, 24), gateway, mac, underlay);
        }

        return new PeerSet(peers);
    }

    /// <summary>"SUBNET GATEWAY MAC UNDERLAY" per line, read by the Go peer program.</summary>
    public string ToPeerList() => Build(p => $"{p.Subnet} {p.Gateway} {p.VtepMac} {p.Underlay}");

    /// <summary>
    /// <c>ip -batch</c> input programming the ARP entry and the classic route of every peer, in flannel's order.
    /// </summary>
    public string ToIpBatchClassicAdd(string device) => Build(p =>
        $"neigh replace {p.Gateway} lladdr {p.VtepMac} dev {device} nud permanent\n" +
        $"route replace {p.Subnet} via {p.Gateway} dev {device} onlink");

    /// <summary><c>ip -batch</c> input deleting what <see cref="ToIpBatchClassicAdd"/> programmed, route first.</summary>
    public string ToIpBatchClassicDelete(string device) => Build(p =>
        $"route del {p.Subnet} via {p.Gateway} dev {device}\n" +
        $"neigh del {p.Gateway} dev {device}");

    /// <summary><c>ip -batch</c> input for the nexthop-object form: ARP entry, nexthop object, route by nhid.</summary>
    public string ToIpBatchNexthopAdd(string device) => Build(p =>
        $"neigh replace {p.Gateway} lladdr {p.VtepMac} dev {device} nud permanent\n" +
        $"nexthop replace id {p.NexthopId} via {p.Gateway} dev {device} onlink\n" +
        $"route replace {p.Subnet} nhid {p.NexthopId}");

    /// <summary><c>ip -batch</c> input deleting the nexthop form: route, nexthop object, ARP entry.</summary>
    public string ToIpBatchNexthopDelete(string device) => Build(p =>
        $"route del {p.Subnet} nhid {p.NexthopId}\n" +
        $"nexthop del id {p.NexthopId}\n" +
        $"neigh del {p.Gateway} dev {device}");

    /// <summary><c>bridge -batch</c> input programming every peer's FDB entry.</summary>
    public string ToBridgeBatchAdd(string device) => Build(p =>
        $"fdb replace {p.VtepMac} dev {device} dst {p.Underlay} self permanent");

    /// <summary><c>bridge -batch</c> input deleting every peer's FDB entry.</summary>
    public string ToBridgeBatchDelete(string device) => Build(p =>
        $"fdb del {p.VtepMac} dev {device} dst {p.Underlay} self");

    private string Build(Func<Peer, string> line)
    {
        var text = new StringBuilder(Count * 96);
        foreach (Peer peer in Peers)
        {
            text.Append(CultureInfo.InvariantCulture, $"{line(peer)}\n");
        }

        return text.ToString();
    }
}
