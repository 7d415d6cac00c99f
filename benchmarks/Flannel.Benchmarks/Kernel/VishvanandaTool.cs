using System.Text.Json;
using System.Text.Json.Serialization;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// vishvananda/netlink, the library Go flannel links, driven by benchmarks/peers/kernel/main.go inside the
/// namespace (<c>ip netns exec NS vishvananda-peers -mode pkg|handle</c>). Mode <c>pkg</c> calls the
/// package-level NeighSet / NeighSet / RouteReplace per peer exactly as flannel does (a new netlink socket
/// per call); mode <c>handle</c> sends the same requests through one <c>netlink.Handle</c>. The Go
/// program times its own phases after it has parsed the peer list, so process start-up is excluded.
/// </summary>
internal sealed class VishvanandaTool(string binary, bool oneHandle) : PeerTool
{
    public override string Name => oneHandle ? "vishvananda-handle" : "vishvananda";

    public override string Description => oneHandle
        ? "Go, one `netlink.Handle`: `h.NeighSet` (ARP), `h.NeighSet` (FDB), `h.RouteReplace` per peer, one request and ack at a time; dump with `h.RouteList`/`h.NeighList`; delete with `h.RouteDel`/`h.NeighDel`"
        : "Go, as flannel calls it: package-level `netlink.NeighSet` (ARP), `netlink.NeighSet` (FDB), `netlink.RouteReplace` per peer (a new socket per call); dump with `netlink.RouteList`/`NeighList`; delete with `RouteDel`/`NeighDel`";

    public override async Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken)
    {
        string peerList = Path.Combine(workDirectory, "peers.txt");
        await File.WriteAllTextAsync(peerList, peers.ToPeerList(), cancellationToken);

        string output = await ProcessRunner.RunAsync(
            "ip",
            ["netns", "exec", ns.Name, binary, "-peers", peerList, "-link", BenchmarkNamespace.VxlanName, "-mode", oneHandle ? "handle" : "pkg"],
            cancellationToken);

        GoResult result = JsonSerializer.Deserialize(output, GoResultContext.Default.GoResult)
            ?? throw new InvalidOperationException($"vishvananda-peers printed no result: {output}");
        if (result.Peers != peers.Count)
        {
            throw new InvalidOperationException($"vishvananda-peers programmed {result.Peers} peers, expected {peers.Count}");
        }

        return new PhaseTimes(
            TimeSpan.FromSeconds(result.ProgramSeconds),
            TimeSpan.FromSeconds(result.DumpSeconds),
            TimeSpan.FromSeconds(result.DeleteSeconds),
            new ObjectCounts(result.RoutesDumped, result.NeighboursDumped, result.FdbDumped, 0));
    }
}

internal sealed record GoResult(
    string Tool,
    int Peers,
    double ProgramSeconds,
    double DumpSeconds,
    double DeleteSeconds,
    int RoutesDumped,
    int NeighboursDumped,
    int FdbDumped);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(GoResult))]
internal sealed partial class GoResultContext : JsonSerializerContext;
