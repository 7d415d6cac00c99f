using System.Net;
using Flannel.Netlink;

namespace Flannel.Benchmarks.Encoding;

/// <summary>
/// The objects flannel's vxlan backend programs, with the same values as the Go encoder benchmark
/// (benchmarks/peers/encoder/encoder_test.go), so the two are compared on identical messages.
/// </summary>
internal static class EncoderFixtures
{
    public const int VxlanIndex = 4;

    public static RouteSpec Route(int peer = 0) => new()
    {
        Destination = new IPNetwork(Gateway(peer), 24),
        Gateway = Gateway(peer),
        LinkIndex = VxlanIndex,
        OnLink = true,
    };

    public static RouteSpec RouteViaNexthop(int peer = 0) => new()
    {
        Destination = new IPNetwork(Gateway(peer), 24),
        NexthopId = (uint)peer + 1,
    };

    public static NexthopSpec Nexthop(int peer = 0) => new()
    {
        Id = (uint)peer + 1,
        Gateway = Gateway(peer),
        LinkIndex = VxlanIndex,
        OnLink = true,
    };

    public static NeighborSpec Neighbor(int peer = 0) => new()
    {
        LinkIndex = VxlanIndex,
        Address = Gateway(peer),
        LinkLayerAddress = VtepMac(peer),
    };

    public static FdbEntrySpec Fdb(int peer = 0) => new()
    {
        LinkIndex = VxlanIndex,
        MacAddress = VtepMac(peer),
        Destination = new IPAddress(new byte[] { 198, 18, (byte)(peer >> 8), (byte)(peer + 2) }),
    };

    /// <summary><c>flannel.1</c> as flannel creates it: vxlan id 1 local 198.18.0.1 dev #2 dstport 8472 nolearning.</summary>
    public static VxlanLinkSpec VxlanLink() => new()
    {
        Name = "flannel.1",
        Vni = 1,
        Local = IPAddress.Parse("198.18.0.1"),
        UnderlayIndex = 2,
        Port = 8472,
        Learning = false,
        Gbp = false,
    };

    // Peer 0 is 10.244.1.0/24 with VTEP MAC 02:42:0a:f4:01:00, as in the Go benchmark.
    private static IPAddress Gateway(int peer) => new(new byte[] { 10, (byte)(244 + (peer + 1) / 256), (byte)(peer + 1), 0 });

    private static MacAddress VtepMac(int peer) => new(new byte[] { 0x02, 0x42, 0x0a, 0xf4, (byte)(peer + 1), (byte)(peer >> 8) });
}
