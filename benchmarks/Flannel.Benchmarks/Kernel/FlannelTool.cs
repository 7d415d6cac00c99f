using System.Net.Sockets;
using Flannel.Netlink;

namespace Flannel.Benchmarks.Kernel;

/// <summary>
/// Flannel.NET through its public <see cref="INetlink"/>: the per-peer objects go into
/// <see cref="NetlinkBatch"/>es of <c>batchPeers</c> peers each, applied with
/// <see cref="INetlink.ApplyAsync"/> (many requests per sendmsg, acks matched by sequence number). The
/// classic form programs <c>SUBNET via GW dev flannel.1 onlink</c>; the nexthop form programs a nexthop
/// object per peer (<c>id I via GW dev flannel.1 onlink</c>) and the route as <c>SUBNET nhid I</c>.
/// </summary>
internal sealed class FlannelTool(bool nexthops, int batchPeers) : PeerTool
{
    public override string Name => nexthops ? "flannel-nexthop" : "flannel";

    public override bool UsesNexthops => nexthops;

    public override bool NeedsWarmUp => true;

    public override string Description => nexthops
        ? $"Flannel.NET `INetlink.ApplyAsync`, {batchPeers} peers per batch: ReplaceNeighbor, ReplaceFdbEntry, ReplaceNexthop (`id I via GW dev flannel.1 onlink`), ReplaceRoute (`nhid I`); dump with ListRoutes/ListNeighbors/ListFdbEntries/ListNexthops; delete with batched Delete*"
        : $"Flannel.NET `INetlink.ApplyAsync`, {batchPeers} peers per batch: ReplaceNeighbor, ReplaceFdbEntry, ReplaceRoute (`via GW dev flannel.1 onlink`); dump with ListRoutes/ListNeighbors/ListFdbEntries; delete with batched Delete*";

    public override async Task<PhaseTimes> RunAsync(BenchmarkNamespace ns, PeerSet peers, string workDirectory, CancellationToken cancellationToken)
    {
        await using INetlink netlink = await FlannelNetlink.OpenAsync(ns, cancellationToken);
        LinkInfo link = await netlink.GetLinkAsync(BenchmarkNamespace.VxlanName, cancellationToken)
            ?? throw new InvalidOperationException($"{BenchmarkNamespace.VxlanName} not found in {ns.Name}");

        // The spec objects stand for what a backend already holds when a lease event arrives: built
        // before the clock starts, as the Go program parses its peer list first.
        PeerSpecs[] specs = peers.Peers.Select(p => PeerSpecs.For(p, link.Index, nexthops)).ToArray();

        TimeSpan program = await TimeAsync(() => ApplyInBatchesAsync(netlink, specs, AddProgram, cancellationToken));
        ObjectCounts programmed = await ns.CountObjectsAsync(cancellationToken);

        ObjectCounts dumped = default;
        TimeSpan dump = await TimeAsync(async () =>
        {
            IReadOnlyList<RouteInfo> routes = await netlink.ListRoutesAsync(
                new RouteFilter { Family = AddressFamily.InterNetwork, LinkIndex = link.Index }, cancellationToken);
            IReadOnlyList<NeighborInfo> neighbours = await netlink.ListNeighborsAsync(link.Index, AddressFamily.InterNetwork, cancellationToken);
            IReadOnlyList<FdbEntryInfo> fdb = await netlink.ListFdbEntriesAsync(link.Index, cancellationToken);
            int nexthopObjects = nexthops ? (await netlink.ListNexthopsAsync(null, cancellationToken)).Count : 0;
            dumped = new ObjectCounts(routes.Count, neighbours.Count, fdb.Count, nexthopObjects);
        });

        TimeSpan delete = await TimeAsync(() => ApplyInBatchesAsync(netlink, specs, AddDelete, cancellationToken));

        return new PhaseTimes(program, dump, delete, dumped, programmed);
    }

    // flannel's order per added lease: ARP entry, FDB entry, then the route (which, in the nexthop form,
    // needs its nexthop object first).
    private void AddProgram(NetlinkBatch batch, PeerSpecs peer)
    {
        batch.ReplaceNeighbor(peer.Neighbor).ReplaceFdbEntry(peer.Fdb);
        if (peer.Nexthop is not null)
        {
            batch.ReplaceNexthop(peer.Nexthop);
        }

        batch.ReplaceRoute(peer.Route);
    }

    // flannel's order per removed lease: route, ARP entry, FDB entry; the nexthop object after its route.
    private void AddDelete(NetlinkBatch batch, PeerSpecs peer)
    {
        batch.DeleteRoute(peer.Route);
        if (peer.Nexthop is not null)
        {
            batch.DeleteNexthop(peer.Nexthop.Id);
        }

        batch.DeleteNeighbor(peer.Neighbor).DeleteFdbEntry(peer.Fdb);
    }

    private async Task ApplyInBatchesAsync(INetlink netlink, PeerSpecs[] specs, Action<NetlinkBatch, PeerSpecs> add, CancellationToken cancellationToken)
    {
        for (int start = 0; start < specs.Length; start += batchPeers)
        {
            int end = Math.Min(start + batchPeers, specs.Length);
            var batch = new NetlinkBatch((end - start) * ObjectsPerPeer);
            for (int i = start; i < end; i++)
            {
                add(batch, specs[i]);
            }

            NetlinkBatchResult result = await netlink.ApplyAsync(batch, cancellationToken);
            if (!result.AllSucceeded)
            {
                NetlinkException first = result.Errors.First(e => e is not null)!;
                throw new InvalidOperationException($"{result.FailedCount} of {result.Count} operations failed; first: {first.Message}", first);
            }
        }
    }

    private sealed record PeerSpecs(NeighborSpec Neighbor, FdbEntrySpec Fdb, NexthopSpec? Nexthop, RouteSpec Route)
    {
        public static PeerSpecs For(Peer peer, int linkIndex, bool nexthops)
        {
            var neighbor = new NeighborSpec { LinkIndex = linkIndex, Address = peer.Gateway, LinkLayerAddress = peer.VtepMac };
            var fdb = new FdbEntrySpec { LinkIndex = linkIndex, MacAddress = peer.VtepMac, Destination = peer.Underlay };
            if (!nexthops)
            {
                var route = new RouteSpec { Destination = peer.Subnet, Gateway = peer.Gateway, LinkIndex = linkIndex, OnLink = true };
                return new PeerSpecs(neighbor, fdb, null, route);
            }

            var nexthop = new NexthopSpec { Id = peer.NexthopId, Gateway = peer.Gateway, LinkIndex = linkIndex, OnLink = true };
            var viaNexthop = new RouteSpec { Destination = peer.Subnet, NexthopId = peer.NexthopId };
            return new PeerSpecs(neighbor, fdb, nexthop, viaNexthop);
        }
    }
}
